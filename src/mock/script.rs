//! Reading a RunPowerShellScript script closely enough to emulate its effect:
//! which services it stops or starts, whether it is an F&O database sync or a
//! Management Reporter reset. This is pattern matching, not a PowerShell
//! interpreter: it understands literal names, `$variables` assigned a literal
//! list, script parameters and `foreach ($x in $list)`.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScriptKind {
    StopServices,
    StartServices,
    Sync,
    MrReset,
    Other,
}

impl ScriptKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ScriptKind::StopServices => "stop_services",
            ScriptKind::StartServices => "start_services",
            ScriptKind::Sync => "sync",
            ScriptKind::MrReset => "mr_reset",
            ScriptKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceAction {
    pub stop: bool,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedScript {
    pub kind: ScriptKind,
    /// In script order.
    pub actions: Vec<ServiceAction>,
    /// For a sync: the SQL server and database it targets, from the `Server`
    /// and `Database` parameters, else from `-sqlserver` / `-sqldatabase`.
    pub sync_server: Option<String>,
    pub sync_database: Option<String>,
}

const SYNC_MARKER: &str = "microsoft.dynamics.ax.deployment.setup.exe";
const MR_MARKER: &str = "reset-datamartintegration";

pub(crate) fn parse_script(script: &str, parameters: &[(String, String)]) -> ParsedScript {
    let vars = collect_variables(script, parameters);
    let lower = script.to_ascii_lowercase();
    let mut actions = Vec::new();
    for (stop, cmdlet) in find_cmdlets(&lower) {
        let rest = statement_after(script, cmdlet);
        for name in service_names(rest, &vars) {
            actions.push(ServiceAction { stop, name });
        }
    }
    let is_sync = lower.contains(SYNC_MARKER);
    let kind = if is_sync {
        ScriptKind::Sync
    } else if lower.contains(MR_MARKER) {
        ScriptKind::MrReset
    } else if !actions.is_empty() && actions.iter().all(|a| a.stop) {
        ScriptKind::StopServices
    } else if !actions.is_empty() && actions.iter().all(|a| !a.stop) {
        ScriptKind::StartServices
    } else {
        ScriptKind::Other
    };
    let (mut sync_server, mut sync_database) = (None, None);
    if is_sync {
        sync_server = param(parameters, "Server");
        sync_database = param(parameters, "Database");
        if sync_server.is_none() || sync_database.is_none() {
            let tokens = tokenize(script);
            let after = |flag: &str| {
                tokens
                    .iter()
                    .position(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(flag)))
                    .and_then(|i| tokens.get(i + 1))
                    .and_then(|t| match t {
                        Tok::Word(w) | Tok::Quoted(w) => resolve(w, &vars).into_iter().next(),
                        Tok::Comma => None,
                    })
            };
            sync_server = sync_server.or_else(|| after("-sqlserver"));
            sync_database = sync_database.or_else(|| after("-sqldatabase"));
        }
    }
    ParsedScript {
        kind,
        actions,
        sync_server,
        sync_database,
    }
}

fn param(parameters: &[(String, String)], name: &str) -> Option<String> {
    parameters
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Byte offsets just past each `Stop-Service` / `Start-Service` word.
fn find_cmdlets(lower: &str) -> Vec<(bool, usize)> {
    let mut found = Vec::new();
    for (needle, stop) in [("stop-service", true), ("start-service", false)] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(needle) {
            let start = from + i;
            let end = start + needle.len();
            let before_ok = start == 0 || !is_word_byte(lower.as_bytes()[start - 1]);
            let after_ok = end == lower.len() || !is_word_byte(lower.as_bytes()[end]);
            if before_ok && after_ok {
                found.push((start, stop, end));
            }
            from = end;
        }
    }
    found.sort_by_key(|(start, _, _)| *start);
    found
        .into_iter()
        .map(|(_, stop, end)| (stop, end))
        .collect()
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The rest of the statement: up to a newline, `;`, `|` or `}`.
fn statement_after(script: &str, from: usize) -> &str {
    let rest = script.get(from..).unwrap_or("");
    let end = rest.find(['\n', '\r', ';', '|', '}']).unwrap_or(rest.len());
    &rest[..end]
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Comma,
}

/// Splits on whitespace, keeps quoted strings whole, turns commas into their
/// own token and ignores the `@(`, `(`, `)` of array literals.
fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(Tok::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                flush(&mut word, &mut out);
                let mut q = String::new();
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    q.push(d);
                }
                out.push(Tok::Quoted(q));
            }
            ',' => {
                flush(&mut word, &mut out);
                out.push(Tok::Comma);
            }
            '@' | '(' | ')' => flush(&mut word, &mut out),
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The names given to `-Name` (or positionally) in one statement.
fn service_names(statement: &str, vars: &HashMap<String, Vec<String>>) -> Vec<String> {
    let tokens = tokenize(statement);
    let start = match tokens
        .iter()
        .position(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("-name")))
    {
        Some(i) => i + 1,
        // Positional form `Stop-Service W3SVC -Force`.
        None => match tokens.first() {
            Some(Tok::Word(w)) if !w.starts_with('-') => 0,
            Some(Tok::Quoted(_)) => 0,
            _ => return Vec::new(),
        },
    };
    let mut names = Vec::new();
    let mut i = start;
    loop {
        match tokens.get(i) {
            Some(Tok::Word(w)) if !w.starts_with('-') || w.starts_with('$') => {
                names.extend(resolve(w, vars))
            }
            Some(Tok::Quoted(q)) => names.extend(resolve(q, vars)),
            _ => break,
        }
        if tokens.get(i + 1) == Some(&Tok::Comma) {
            i += 2;
        } else {
            break;
        }
    }
    names
}

fn resolve(value: &str, vars: &HashMap<String, Vec<String>>) -> Vec<String> {
    match value.strip_prefix('$') {
        Some(var) => vars
            .get(&var.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default(),
        None if value.is_empty() => Vec::new(),
        None => vec![value.to_string()],
    }
}

/// Script parameters (a comma-separated value is a list), `$x = 'A','B'`
/// assignments and `foreach ($s in $x)` loop variables.
fn collect_variables(
    script: &str,
    parameters: &[(String, String)],
) -> HashMap<String, Vec<String>> {
    let mut vars: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in parameters {
        let items: Vec<String> = value
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        vars.insert(name.to_ascii_lowercase(), items);
    }
    for line in script.lines() {
        let t = line.trim();
        let Some(rest) = t.strip_prefix('$') else {
            continue;
        };
        let ident_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (ident, after) = rest.split_at(ident_len);
        let after = after.trim_start();
        let Some(rhs) = after.strip_prefix('=') else {
            continue;
        };
        if ident.is_empty() || rhs.starts_with('=') {
            continue;
        }
        let rhs = rhs.split(';').next().unwrap_or("");
        let tokens = tokenize(rhs);
        // Only literal lists: anything else is a command we cannot evaluate.
        if tokens.is_empty() || tokens.iter().any(|t| matches!(t, Tok::Word(_))) {
            continue;
        }
        let items = tokens
            .into_iter()
            .filter_map(|t| match t {
                Tok::Quoted(q) => Some(q),
                _ => None,
            })
            .collect();
        vars.insert(ident.to_ascii_lowercase(), items);
    }
    let lower = script.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("foreach") {
        let at = from + i + "foreach".len();
        from = at;
        let rest = &lower[at..];
        let Some(open) = rest.trim_start().strip_prefix('(') else {
            continue;
        };
        let Some(close) = open.find(')') else {
            continue;
        };
        let inner: Vec<&str> = open[..close].split_whitespace().collect();
        if let [item, kw, list] = inner.as_slice() {
            if *kw == "in" {
                if let (Some(item), Some(list)) = (item.strip_prefix('$'), list.strip_prefix('$')) {
                    if let Some(values) = vars.get(list).cloned() {
                        vars.insert(item.to_string(), values);
                    }
                }
            }
        }
    }
    vars
}

/// The last `max` bytes of `s`, cut on a character boundary, like Run
/// Command's output limit.
pub(crate) fn tail_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn names(s: &ParsedScript) -> Vec<(bool, &str)> {
        s.actions
            .iter()
            .map(|a| (a.stop, a.name.as_str()))
            .collect()
    }

    #[test]
    fn literal_stop_and_start() {
        let s = parse_script(
            "Stop-Service -Name W3SVC -Force\nstop-service -Force -Name 'DynamicsAxBatch'",
            &[],
        );
        assert_eq!(s.kind, ScriptKind::StopServices);
        assert_eq!(names(&s), vec![(true, "W3SVC"), (true, "DynamicsAxBatch")]);

        let s = parse_script(
            "Start-Service -Name \"W3SVC\"; Start-Service MR2012ProcessService",
            &[],
        );
        assert_eq!(s.kind, ScriptKind::StartServices);
        assert_eq!(
            names(&s),
            vec![(false, "W3SVC"), (false, "MR2012ProcessService")]
        );
    }

    #[test]
    fn list_forms_and_variables() {
        let s = parse_script("Stop-Service -Name 'A','B', \"C\" -Force", &[]);
        assert_eq!(names(&s), vec![(true, "A"), (true, "B"), (true, "C")]);

        let script = "$services = @('W3SVC', 'DynamicsAxBatch')\n\
                      foreach ($s in $services) {\n  Stop-Service -Name $s -Force -ErrorAction Stop\n}\n\
                      Write-Output 'pitr-exit-code: 0'";
        let s = parse_script(script, &[]);
        assert_eq!(names(&s), vec![(true, "W3SVC"), (true, "DynamicsAxBatch")]);

        let s = parse_script(
            "param([string]$Services)\nforeach ($n in $Services) { Start-Service -Name $n }",
            &p(&[("Services", "W3SVC,DynamicsAxBatch")]),
        );
        assert_eq!(s.kind, ScriptKind::StartServices);
        assert_eq!(
            names(&s),
            vec![(false, "W3SVC"), (false, "DynamicsAxBatch")]
        );

        // Get-Service does not count and unknown variables resolve to nothing.
        let s = parse_script("Get-Service -Name W3SVC\nStop-Service -Name $nope", &[]);
        assert_eq!(s.kind, ScriptKind::Other);
        assert!(s.actions.is_empty());
    }

    #[test]
    fn sync_and_mr_reset() {
        let s = parse_script(
            "& K:\\AosService\\PackagesLocalDirectory\\bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe -sqlserver $Server -sqldatabase $Database -sqlpwd $SqlPwd -setupmode sync",
            &p(&[("Server", "sql-x.database.windows.net"), ("Database", "AxDB"), ("SqlPwd", "p")]),
        );
        assert_eq!(s.kind, ScriptKind::Sync);
        assert_eq!(s.sync_server.as_deref(), Some("sql-x.database.windows.net"));
        assert_eq!(s.sync_database.as_deref(), Some("AxDB"));

        let s = parse_script(
            "Microsoft.Dynamics.AX.Deployment.Setup.exe -sqlserver sql-y.database.windows.net -sqldatabase 'AxDB'",
            &[],
        );
        assert_eq!(s.sync_server.as_deref(), Some("sql-y.database.windows.net"));
        assert_eq!(s.sync_database.as_deref(), Some("AxDB"));

        let s = parse_script(
            "Import-Module C:\\MR\\Server\\MRDeploy\\MRDeploy.psd1\nReset-DatamartIntegration -Reason OTHER -SkipMRTableReset",
            &[],
        );
        assert_eq!(s.kind, ScriptKind::MrReset);
        assert_eq!(parse_script("Write-Output hi", &[]).kind, ScriptKind::Other);
    }

    #[test]
    fn guarded_template_form() {
        // The shape of pitr's built-in offline template.
        let script = "$ErrorActionPreference = 'Stop'\ntry {\n    \
            if (Get-Service -Name 'W3SVC' -ErrorAction SilentlyContinue) { Stop-Service -Name 'W3SVC' -Force }\n    \
            if (Get-Service -Name 'DynamicsAxBatch' -ErrorAction SilentlyContinue) { Stop-Service -Name 'DynamicsAxBatch' -Force }\n    \
            Write-Output 'pitr-exit-code: 0'\n} catch {\n    Write-Output \"pitr-exit-code: 1\"\n}";
        let s = parse_script(script, &[]);
        assert_eq!(s.kind, ScriptKind::StopServices);
        assert_eq!(names(&s), vec![(true, "W3SVC"), (true, "DynamicsAxBatch")]);
    }

    #[test]
    fn mixed_stop_start_is_other_but_keeps_order() {
        let s = parse_script("Stop-Service -Name A\nStart-Service -Name A", &[]);
        assert_eq!(s.kind, ScriptKind::Other);
        assert_eq!(names(&s), vec![(true, "A"), (false, "A")]);
    }

    #[test]
    fn tail_is_char_safe() {
        assert_eq!(tail_bytes("abcdef", 3), "def");
        assert_eq!(tail_bytes("ab", 3), "ab");
        assert_eq!(tail_bytes("aé", 1), "");
        assert_eq!(tail_bytes("aéb", 3), "éb");
    }

    /// Odd or broken input neither panics nor invents a service action.
    #[test]
    fn odd_input_yields_no_phantom_action() {
        for s in [
            "Stop-Service",
            "Stop-Service -Name",
            "Stop-Service -Force",
            "foreach (",
            "$=",
            "$x = ",
            "'unterminated",
            "Stop-Service -Name ,,,",
            "ß-Stop-Service-ß",
            "Start-Service -Name $undefined",
        ] {
            assert_eq!(
                parse_script(s, &[]),
                ParsedScript {
                    kind: ScriptKind::Other,
                    actions: vec![],
                    sync_server: None,
                    sync_database: None,
                },
                "{s:?}"
            );
        }
        // An unterminated quote runs to the end of the statement.
        let s = parse_script("Stop-Service -Name 'W3SVC", &[]);
        assert_eq!(s.kind, ScriptKind::StopServices);
        assert_eq!(names(&s), vec![(true, "W3SVC")]);
    }
}
