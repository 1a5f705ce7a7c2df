"""Parses PowerShell scripts with tree-sitter-powershell and reports every
ERROR and MISSING node (tests/it/powershell.rs runs it on every built-in
script template as rendered), and two things the grammar accepts that the
VMs' Windows PowerShell 5.1 does not (see KNOWN GAPS below).

    python parse_powershell.py FILE...

Prints one line per problem, `FILE:LINE:COLUMN: KIND what (to LINE:COLUMN):
text in line ...`, then `parsed N files, M problems`. Exit code 0 when every
file parsed clean, 3 when a file has a problem, 4 when the grammar fails its
self-check (it must accept the known-good snippet and report every
known-broken one below, or its verdicts prove nothing), 5 when tree-sitter
or tree-sitter-powershell is not installed.

KNOWN GAPS of tree-sitter-powershell 0.26.4, found by deleting each
delimiter of the rendered templates one at a time:
- a quote inside or at the end of a command-mode bareword (`-Name W3SVC'`)
  is taken as a literal character; PowerShell opens a quoted section there,
  so a dropped opening quote goes unnoticed. Reported here as BAREWORD-QUOTE
  (the templates quote every literal argument whole).
- `&&` and `||` between pipelines are PowerShell 7 only; managed Run
  Command's RunPowerShellScript runs Windows PowerShell 5.1. Reported here as
  PS7-ONLY. (`??`, `?:`, `?.` are already errors to the grammar.)
- it wants a line break or `;` after every switch clause but the last,
  which PowerShell does not: the templates put one clause on a line.
Beyond syntax it cannot tell anything: cmdlet and parameter names, .NET
types and members, whether a variable is set, what a value holds at run
time (the values reach the scripts as data, decoded from base64url JSON,
never as script text).
"""

import re
import sys

try:
    import tree_sitter
    import tree_sitter_powershell
except ImportError as e:
    print("{}: install tests/python/requirements-pwsh-grammar.txt".format(e))
    sys.exit(5)

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

# Known good: the constructs the templates use.
GOOD = b"""param([string]$PitrArgs, [string]$PitrSecrets)
$ErrorActionPreference = 'Stop'
trap { Write-Error -Message $_.Exception.Message -ErrorAction Continue; exit 1 }
function ConvertFrom-PitrArgs([string]$s) {
    if (-not $s) { return [pscustomobject]@{} }
    switch ($b.Length % 4) {
        2 { $b += '==' }
        3 { $b += '=' }
    }
    [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($b)) | ConvertFrom-Json
}
foreach ($n in @('a', 'b')) { [void][AppDomain]::CurrentDomain.Load($n) }
if (Get-Service -Name 'W3SVC' -ErrorAction SilentlyContinue) { Stop-Service -Name 'W3SVC' -Force }
& $setup -x "$($a.Server).db" -y $a.PackageDir
exit $LASTEXITCODE
"""

# Known broken, each in its own way: a grammar that reports none of them is
# not checking anything.
BAD = [
    b"if ($a) { Write-Host 'x'\n",  # a closing brace dropped
    b"$x = 'unterminated\n",  # a string never closed
    b"foreach ($n in @(1, 2)) {\n    [void]$n\n",  # a block never closed
    b"$server = \"$($a.Server.database\"\n",  # a subexpression never closed
    b"if ($a -eq) { }\n",  # an operator without its right operand
    b"Stop-Service -Name W3SVC' -Force\n",  # an opening quote dropped
    b"Get-Service x && exit 0\n",  # PowerShell 7 only
]

# What PowerShell takes as quotes, in a bareword too.
QUOTES = "'\"\u2018\u2019\u201a\u201b\u201c\u201d\u201e"


def problems(node):
    """Every problem under `node`: (kind, node, what).

    A MISSING token the grammar keeps hidden (a name starting with `_`,
    such as `_statement_terminator`) is not among any node's children; it
    shows only in the node's S-expression, so it is reported on the
    smallest visible node that holds it, by that name.
    """
    if node.is_missing:
        return [("MISSING", node, node.type)]
    if node.is_error:
        return [("ERROR", node, "unexpected")]
    found = []
    if node.type in ("&&", "||"):
        found.append(("PS7-ONLY", node, "pipeline chain operator (not in Windows PowerShell 5.1)"))
    if node.type == "generic_token" and any(q in node.text.decode("utf-8", "replace") for q in QUOTES):
        found.append(("BAREWORD-QUOTE", node, "quote in a bareword (the grammar cannot tell if it is closed)"))
    errors_below = False
    for child in node.children:
        below = problems(child)
        errors_below |= any(kind in ("ERROR", "MISSING") for kind, _, _ in below)
        found.extend(below)
    if node.has_error and not errors_below:
        hidden = re.findall(r"\(MISSING ([^()]+?)\)", str(node))
        what = "{} (hidden, inside {})".format(", ".join(hidden) or "a hidden token", node.type)
        found.append(("MISSING", node, what))
    return found


def column(lines, point):
    """(line, column), 1-based, the column in characters as an editor shows it."""
    row, byte_col = point
    line = lines[row] if row < len(lines) else b""
    return row + 1, len(line[:byte_col].decode("utf-8", "replace")) + 1


def describe(path, source, kind, node, what):
    lines = source.split(b"\n")
    row, col = column(lines, node.start_point)
    end_row, end_col = column(lines, node.end_point)
    text = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
    if len(text) > 60:
        text = text[:57] + "..."
    line = lines[row - 1].decode("utf-8", "replace").strip() if row <= len(lines) else ""
    return "{}:{}:{}: {} {} (to {}:{}): {!r} in line {!r}".format(
        path, row, col, kind, what, end_row, end_col, text, line
    )


def self_check():
    ok = True
    for kind, node, what in problems(PARSER.parse(GOOD).root_node):
        print("self-check: " + describe("<good>", GOOD, kind, node, what))
        ok = False
    for i, snippet in enumerate(BAD):
        if not problems(PARSER.parse(snippet).root_node):
            print("self-check: nothing reported in broken snippet {}: {!r}".format(i, snippet))
            ok = False
    return ok


def main(paths):
    if not self_check():
        print("the grammar failed its self-check: its verdicts mean nothing")
        return 4
    count = 0
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            source = f.read()
        for kind, node, what in problems(PARSER.parse(source).root_node):
            print(describe(path, source, kind, node, what))
            total += 1
        count += 1
    print("parsed {} files, {} problems".format(count, total))
    return 3 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
