#!/bin/sh
# prune-node-modules.sh DIR: deletes what Node never loads at run time from a production node_modules:
# source maps and TypeScript declarations (about 250 of its 390 MB, mostly tfjs's bundle maps).
# Used by `make image` and by the Dockerfile, so both images hold the same files. POSIX sh: the
# Dockerfile's build stage runs it too.
set -eu
find "$1" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -exec rm -f {} +
