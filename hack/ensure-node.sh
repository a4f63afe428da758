#!/usr/bin/env bash
# Prints a directory whose `node` is >= 22, for the Makefile to put first on PATH.
# The system node when it is new enough; otherwise Node 24 from the npm registry (the `node-linux-*`
# package that the `node` package itself installs) unpacked once into the tool cache.
set -euo pipefail
want_major=24
min_major=22
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/node-$want_major"

if command -v node >/dev/null 2>&1; then
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -ge "$min_major" ]; then dirname "$(command -v node)"; exit 0; fi
fi
if [ -x "$cache/bin/node" ]; then echo "$cache/bin"; exit 0; fi

case "$(uname -m)" in x86_64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
pkg="node-$os-$arch@$want_major"
echo "ensure-node: system node is older than $min_major; installing Node $want_major ($pkg) from the npm registry into $cache" >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
mkdir -p "$tmp/unpacked"
tar -xzf "$tmp"/node-*.tgz -C "$tmp/unpacked"
rm -rf "$cache.tmp" && mkdir -p "$(dirname "$cache")"
mv "$tmp/unpacked/package" "$cache.tmp"
# The package ships node itself; npm/npx come from its bundled lib when present, else the system npm runs under it.
rm -rf "$cache" && mv "$cache.tmp" "$cache"
"$cache/bin/node" --version >&2
echo "$cache/bin"
