# What the image is made of; sourced by the hack/image scripts. Versions are pinned in image.lock.
IMAGE_ARCHES="${IMAGE_ARCHES:-amd64 arm64}"
# The runtime node needs (glibc, libgcc_s, libstdc++) plus CA certificates and time zones; no shell.
DEBIAN_PACKAGES="libc6 libgcc-s1 gcc-12-base libstdc++6 ca-certificates tzdata"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=http://deb.debian.org/debian
DEBIAN_SECURITY_MIRROR=http://deb.debian.org/debian-security
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Node 24 from the npm registry's node-linux-<arch> packages (the ones the `node` package installs).
NODE_VERSION=24.22.3
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-ghcr.io/ballast-dev/ballast}"
IMAGE_SOURCE=https://github.com/ballast-dev/ballast
# The user distroless images call nonroot; numeric so Kubernetes can check runAsNonRoot.
IMAGE_UID=65532
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ballast/image"

node_arch() { case "$1" in amd64) echo x64 ;; *) echo "$1" ;; esac; }
