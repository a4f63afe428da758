#!/usr/bin/env bash
# build-go-tool.sh NAME VERSION MODULE_DIR PACKAGE [go build flags...]
# Prints the path of NAME, the command PACKAGE built at the version MODULE_DIR/go.mod pins, cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/NAME-VERSION/ (built once, reused). Used for helm and crane.
set -euo pipefail
name="$1" version="$2" module_dir="$3" package="$4"
shift 4
out="${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/$name-$version"
if [ ! -x "$out/$name" ]; then
  command -v go >/dev/null 2>&1 || { echo "build-go-tool: go is not installed to build $name $version" >&2; exit 1; }
  mkdir -p "$out"
  echo "build-go-tool: building $name $version into $out (a few minutes on a cold Go cache, seconds on a warm one)" >&2
  # Build to a temp name then rename, so an interrupted build never leaves a half-written binary.
  (cd "$module_dir" && CGO_ENABLED=0 go build -trimpath "$@" -o "$out/.$name.tmp" "$package") >&2
  mv -f "$out/.$name.tmp" "$out/$name"
fi
echo "$out/$name"
