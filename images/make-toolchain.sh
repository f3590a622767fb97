#!/usr/bin/env bash
# Makes the toolchain base images/builder.Containerfile builds FROM, under the official image's name
# (docker.io/library/rust:VERSION-slim-bookworm), from Debian's packages and this machine's own Rust
# toolchain: no registry of container images is reachable here, and no toolchain can be fetched but
# the one rustup installed. Anywhere else the same Containerfile pulls the real one. Done once per
# Rust version: an existing image of that name is kept.
#   images/make-toolchain.sh [--force]      prints the base's name
set -euo pipefail
podman() { command podman --runtime runc --cgroup-manager=cgroupfs "$@"; }
version=$(rustc --version | awk '{print $2}')
BASE=docker.io/library/rust:$version-slim-bookworm
if [ "${1:-}" != "--force" ] && podman image exists "$BASE"; then
  echo "$BASE"
  exit 0
fi
for tool in mmdebstrap podman rustc; do
  command -v "$tool" >/dev/null || { echo "make-toolchain: $tool is missing (make deps installs it)" >&2; exit 1; }
done
sysroot=$(rustc --print sysroot)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org}
# What the official rust:slim image holds: a C toolchain for build scripts, CA certificates, and
# the Rust toolchain at /usr/local/rustup with cargo's home at /usr/local/cargo.
mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
  --include=ca-certificates,gcc,libc6-dev \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook="mkdir -p \"\$1/usr/local/rustup/toolchains/$version\" \"\$1/usr/local/cargo/bin\"" \
  --customize-hook="tar -C '$sysroot' --exclude=share/doc -cf - . | tar -C \"\$1/usr/local/rustup/toolchains/$version\" -xf -" \
  --customize-hook="for b in cargo rustc rustdoc; do ln -s ../../rustup/toolchains/$version/bin/\$b \"\$1/usr/local/cargo/bin/\$b\"; done" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$work/rootfs.tar" \
  "deb $MIRROR/debian bookworm main" \
  "deb $MIRROR/debian bookworm-updates main" \
  "deb $MIRROR/debian-security bookworm-security main"
podman import --quiet \
  --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
  --change 'ENV CARGO_HOME=/usr/local/cargo' \
  --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' "$work/rootfs.tar" "$BASE" >/dev/null
echo "make-toolchain: $BASE made from Debian's packages and $sysroot" >&2
echo "$BASE"
