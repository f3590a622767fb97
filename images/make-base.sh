#!/usr/bin/env bash
# Makes the base image the Containerfiles build FROM, under its real name
# (docker.io/library/debian:bookworm-slim), from Debian's own packages: no registry of container
# images is reachable here. Anywhere else the same Containerfiles pull the real one; this is only
# for machines without a registry. Done once: an existing image of that name is kept.
#   images/make-base.sh [--force]
set -euo pipefail
BASE=docker.io/library/debian:bookworm-slim
podman() { command podman --runtime runc --cgroup-manager=cgroupfs "$@"; }

if [ "${1:-}" != "--force" ] && podman image exists "$BASE"; then
  exit 0
fi
for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || { echo "make-base: $tool is missing (make deps installs it)" >&2; exit 1; }
done
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org}
# minbase, and what debian:bookworm-slim leaves out: documentation, man pages, locales, apt lists.
mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$tar" \
  "deb $MIRROR/debian bookworm main" \
  "deb $MIRROR/debian bookworm-updates main" \
  "deb $MIRROR/debian-security bookworm-security main"
podman import --quiet --change 'CMD ["bash"]' "$tar" "$BASE" >/dev/null
echo "make-base: $BASE made from Debian's packages ($(podman image inspect --format '{{.Size}}' "$BASE" | numfmt --to=iec))"
