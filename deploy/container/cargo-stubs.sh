#!/bin/sh
# Creates an empty stand-in for every target that Cargo.toml names, so that
# `cargo build` can compile the dependencies from the manifest and the lock
# file alone (the Dockerfile's dependency layer). Cargo checks at load time
# that each declared target's file exists, even for targets a release build
# does not compile ([[test]] and the like).
#   usage: cargo-stubs.sh [Cargo.toml]
set -eu
manifest="${1:-Cargo.toml}"

mkdir -p src
[ -e src/lib.rs ] || : > src/lib.rs
[ -e src/main.rs ] || echo 'fn main() {}' > src/main.rs

# "KIND PATH" for each [[bin]], [[test]], [[bench]], [[example]]: its `path`,
# or cargo's default place for its `name` (a [[bin]] without a path is
# src/main.rs or src/bin/NAME.rs: the first exists already, the second is
# found by cargo only if present, so it is left alone).
awk '
function flush() {
  if (kind != "") {
    if (path == "" && kind != "bin") path = dir[kind] "/" name ".rs"
    if (path != "") print kind, path
  }
  kind = ""; name = ""; path = ""
}
BEGIN { dir["test"] = "tests"; dir["bench"] = "benches"; dir["example"] = "examples" }
/^\[\[(bin|test|bench|example)\]\]/ { flush(); kind = $0; gsub(/[][ ]/, "", kind); next }
/^\[/ { flush(); next }
kind != "" && /^name *=/ { v = $0; sub(/^name *= *"/, "", v); sub(/".*/, "", v); name = v }
kind != "" && /^path *=/ { v = $0; sub(/^path *= *"/, "", v); sub(/".*/, "", v); path = v }
END { flush() }
' "$manifest" | while read -r _kind path; do
  mkdir -p "$(dirname "$path")"
  [ -e "$path" ] || echo 'fn main() {}' > "$path"
done
