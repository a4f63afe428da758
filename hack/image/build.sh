#!/usr/bin/env bash
# `make image`: builds the Ballast OCI image for linux/amd64 and linux/arm64 without Docker or privileges.
#   hack/image/build.sh [OUT_DIR]      (default dist/image; see docs/image.md)
# Parts: Debian packages and Node pinned in hack/image/image.lock (downloads cached and sha256-checked),
# production node_modules from `npm ci --omit=dev` (cached by lock hash), dist/ compiled fresh from src/.
# Each layer is a tar with sorted names, fixed owners, modes and mtimes (the commit's time); crane, built
# from its pinned Go module, assembles the images and the index through a throwaway local registry.
# Output: OUT_DIR/oci (OCI layout, multi-arch index), OUT_DIR/ballast-<version>-linux-<arch>.tar
# (docker/podman load, kind load image-archive) and OUT_DIR/digests (index and per-arch digests).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=hack/image/config.sh
. "$here/config.sh"
out="$(mkdir -p "${1:-$repo/dist/image}" && cd "${1:-$repo/dist/image}" && pwd)"
started=$SECONDS

crane_bin="$("$here/ensure-crane.sh")"
version="$(node -p 'require(process.argv[1]).version' "$repo/package.json")"
revision="$(git -C "$repo" rev-parse HEAD)"
# A tree with uncommitted changes is not the commit it would claim to be.
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] || revision="$revision-dirty"
# Every file's mtime and the created label are the commit's time, so two builds of one commit are
# byte-identical (crane leaves the config's own created field at the zero time).
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"

work="$(mktemp -d "${TMPDIR:-/tmp}/ballast-image.XXXXXX")"
registry_pid=""
cleanup() {
  [ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- Parts shared by both architectures -------------------------------------------------------------
# dist/ compiled afresh from src/ (never the checkout's dist/, which may hold output of deleted sources),
# in a copy laid out like the checkout so the source maps' relative paths ("../../src/…") do not depend
# on where the staging dir is; the Dockerfile's build stage gives the same.
echo "image: compiling dist/ ($((SECONDS - started)) s)" >&2
mkdir -p "$work/compile"
cp -R "$repo/src" "$repo/tsconfig.json" "$repo/package.json" "$work/compile/"
ln -s "$repo/node_modules" "$work/compile/node_modules"
"$repo/node_modules/.bin/tsc" -p "$work/compile/tsconfig.json"
mkdir -p "$work/app/app"
mv "$work/compile/dist" "$work/app/app/dist"
install -D -m 0755 "$here/ballast" "$work/app/usr/local/bin/ballast"
cp -R "$repo/crds" "$work/app/app/crds"

# Production dependencies only, pruned, cached by package.json + package-lock.json + the prune rules.
# No install scripts run: no production dependency needs one (the lock's only one is core-js's banner,
# a dev dependency).
modules_key="$(cat "$repo/package.json" "$repo/package-lock.json" "$here/prune-node-modules.sh" | sha256sum | cut -c1-16)"
# The cache entry is the layer's tree itself (app/package.json, app/node_modules), tarred in place.
modules="$CACHE_DIR/node_modules/$modules_key"
if [ ! -d "$modules/app/node_modules" ]; then
  echo "image: npm ci --omit=dev into $modules" >&2
  rm -rf "$modules.tmp" && mkdir -p "$modules.tmp/app"
  cp "$repo/package.json" "$repo/package-lock.json" "$modules.tmp/app/"
  (cd "$modules.tmp/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  "$here/prune-node-modules.sh" "$modules.tmp/app/node_modules"
  rm -f "$modules.tmp/app/package-lock.json" "$modules.tmp/app/node_modules/.package-lock.json"
  rm -rf "$modules" && mv "$modules.tmp" "$modules"
fi

# layer_tar DIR TAR: DIR's tree as a layer, names sorted, owned by root, no group/other write.
layer_tar() {
  local dir="$1" tar="$2"
  (cd "$dir" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    tar --create --file "$tar" --no-recursion --files-from - --format=gnu --numeric-owner --owner=0 --group=0 \
      --mtime="@$epoch" --mode=go-w)
}

# --- One architecture: the base root filesystem and node --------------------------------------------
# base_rootfs ARCH DIR: the Debian packages unpacked (no maintainer scripts run), trimmed to what runs.
base_rootfs() {
  local arch="$1" root="$2" kind larch name pkgver url sha deb
  mkdir -p "$root/var/lib/dpkg/status.d"
  while read -r kind larch name pkgver url sha; do
    [ "$kind" = deb ] && [ "$larch" = "$arch" ] || continue
    deb="$("$here/fetch.sh" "$url" "$sha")"
    dpkg-deb --extract "$deb" "$root"
    # What distroless images record too: vulnerability scanners read the package list from here.
    { dpkg-deb --field "$deb"; echo "Status: install ok installed"; } > "$root/var/lib/dpkg/status.d/$name"
  done < "$here/image.lock"
  # Documentation goes; the licences (copyright files) stay.
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" "$root/usr/share/bug"
  # update-ca-certificates, the only program there, is a shell script and the image has no shell.
  rm -rf "$root/usr/sbin"
  # update-ca-certificates' job (a maintainer script we do not run): the bundle at the path OpenSSL looks.
  mkdir -p "$root/etc/ssl/certs"
  find "$root/usr/share/ca-certificates" -name '*.crt' -print0 | LC_ALL=C sort -z | xargs -0 cat > "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' "$IMAGE_UID" "$IMAGE_UID" > "$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$IMAGE_UID" > "$root/etc/group"
  # glibc's default without this file asks DNS before /etc/hosts.
  echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
}

for arch in $IMAGE_ARCHES; do
  echo "image: linux/$arch root filesystem ($((SECONDS - started)) s)" >&2
  stage="$work/$arch"
  base_rootfs "$arch" "$stage/base"
  layer_tar "$stage/base" "$stage/base.tar"
  # Writable scratch and the user's home, appended with their own owner and mode.
  mkdir -p "$stage/home/tmp" "$stage/home/home/nonroot"
  (cd "$stage/home" && tar --append --file "$stage/base.tar" --no-recursion --format=gnu --numeric-owner --owner=0 --group=0 --mtime="@$epoch" --mode=1777 tmp \
    && tar --append --file "$stage/base.tar" --no-recursion --format=gnu --numeric-owner --owner=0 --group=0 --mtime="@$epoch" --mode=0755 home \
    && tar --append --file "$stage/base.tar" --no-recursion --format=gnu --numeric-owner --owner="$IMAGE_UID" --group="$IMAGE_UID" --mtime="@$epoch" --mode=0700 home/nonroot)

  read -r _ _ _ _ node_url node_sha < <(awk -v a="$arch" '$1=="node" && $2==a' "$here/image.lock")
  [ -n "$node_sha" ] || { echo "image: image.lock has no node for $arch (run hack/image/lock.sh)" >&2; exit 1; }
  mkdir -p "$stage/node-pkg" "$stage/node/usr/local/bin" "$stage/node/usr/local/share/doc/node"
  tar -xzf "$("$here/fetch.sh" "$node_url" "$node_sha")" -C "$stage/node-pkg"
  install -m 0755 "$stage/node-pkg/package/bin/node" "$stage/node/usr/local/bin/node"
  install -m 0644 "$stage/node-pkg/package/LICENSE" "$stage/node/usr/local/share/doc/node/LICENSE"
  layer_tar "$stage/node" "$stage/node.tar"
done
layer_tar "$modules" "$work/modules.tar"
layer_tar "$work/app" "$work/app.tar"

# --- Assemble with crane through a local registry that lives as long as this script -----------------
mkdir -p "$work/registry"
"$crane_bin" registry serve --address 127.0.0.1:0 --disk "$work/registry" 2> "$work/registry.log" &
registry_pid=$!
for _ in $(seq 50); do grep -q 'serving on port' "$work/registry.log" && break; sleep 0.1; done
port="$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$work/registry.log")"
[ -n "$port" ] || { echo "image: crane's local registry did not start: $(cat "$work/registry.log")" >&2; exit 1; }
local_repo="127.0.0.1:$port/ballast"
# crane logs every blob it pushes; keep that for when a step fails.
crane() { "$crane_bin" --insecure "$@" 2>> "$work/crane.log" || { cat "$work/crane.log" >&2; return 1; }; }

echo "image: assembling with crane ($((SECONDS - started)) s)" >&2
manifests=()
for arch in $IMAGE_ARCHES; do
  # Least to most often changed, so a new commit re-pulls only the last layer.
  crane append --oci-empty-base -t "$local_repo:$arch" \
    -f "$work/$arch/base.tar" -f "$work/$arch/node.tar" -f "$work/modules.tar" -f "$work/app.tar" > /dev/null
  crane mutate "$local_repo:$arch" -t "$local_repo:$arch" --set-platform "linux/$arch" \
    --user "$IMAGE_UID:$IMAGE_UID" --workdir /app --entrypoint ballast --cmd --help \
    -e PATH=/usr/local/bin:/usr/bin:/bin -e NODE_ENV=production \
    -l "org.opencontainers.image.source=$IMAGE_SOURCE" -l "org.opencontainers.image.version=$version" \
    -l "org.opencontainers.image.revision=$revision" -l "org.opencontainers.image.created=$created" \
    -l "org.opencontainers.image.title=ballast" -l "org.opencontainers.image.licenses=Apache-2.0" > /dev/null
  manifests+=(-m "$local_repo:$arch")
done
crane index append "${manifests[@]}" -t "$local_repo:$version" > /dev/null

echo "image: writing $out ($((SECONDS - started)) s)" >&2
rm -rf "$out/oci" "$out"/ballast-*.tar "$out/digests"
crane pull --format oci "$local_repo:$version" "$out/oci"
# The tag in the layout's index.json (OCI ref.name annotation), as `skopeo copy oci:dist/image/oci:<version>`
# and the local nodes (`ballast dev up`) look images up by tag. index.json is not a blob: no digest changes.
node -e '
  const fs = require("node:fs");
  const [file, tag] = process.argv.slice(1);
  const index = JSON.parse(fs.readFileSync(file, "utf8"));
  index.manifests[0].annotations = { "org.opencontainers.image.ref.name": tag };
  fs.writeFileSync(file, JSON.stringify(index, null, 3) + "\n");
' "$out/oci/index.json" "$version"
{
  echo "index $(crane digest "$local_repo:$version")"
  for arch in $IMAGE_ARCHES; do
    # Same image, written as a docker-load tarball named for the real repository.
    crane mutate "$local_repo:$arch" -t "$IMAGE_REPOSITORY:$version" -o "$out/ballast-$version-linux-$arch.tar" > /dev/null
    echo "linux/$arch $(crane digest "$local_repo:$arch")"
  done
} > "$out/digests"
echo "image: $IMAGE_REPOSITORY:$version in $out ($((SECONDS - started)) s)" >&2
cat "$out/digests"
