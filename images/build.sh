#!/usr/bin/env bash
# Builds the vigie-cloud and vigie-edge images from binaries already built, with podman.
#   images/build.sh PROFILE_DIR TAG     e.g. images/build.sh target/release 0.1.0
# The binaries come from PROFILE_DIR (debug sections stripped, as a named build context), the console
# from web/dist; the base is made locally first when no registry has it (images/make-base.sh).
# Docker image format, so that HEALTHCHECK is kept. Prints each image's size.
set -euo pipefail
cd "$(dirname "$0")/.."
bins=${1:?usage: images/build.sh PROFILE_DIR TAG}
tag=${2:?usage: images/build.sh PROFILE_DIR TAG}
for b in vigie-cloud vigie-edge; do
  [ -x "$bins/$b" ] || { echo "images: $bins/$b is missing: build it first" >&2; exit 1; }
done
[ -f web/dist/index.html ] || { echo "images: web/dist is missing: make web" >&2; exit 1; }
images/make-base.sh
# The binaries without their debug sections (a debug build's are most of its size), in a context
# of their own.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for b in vigie-cloud vigie-edge; do
  strip --strip-debug -o "$context/$b" "$bins/$b"
done
# The rlimits and the cgroup manager this machine's runtime needs (shared/dependencies.md).
podman_flags=(--runtime runc --cgroup-manager=cgroupfs)
build_flags=(--ulimit nofile=1024:4096 --ulimit nproc=1024:2048 --network host --quiet --format docker
  --build-arg "VERSION=$(awk -F'"' '/^version/{print $2; exit}' Cargo.toml)"
  --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  --build-arg "SOURCE=$(git remote get-url origin 2>/dev/null || echo unknown)")
podman "${podman_flags[@]}" build "${build_flags[@]}" -f images/cloud.Containerfile \
  --build-context "bins=$context" --build-context console=web/dist -t "vigie-cloud:$tag" images/ >/dev/null
podman "${podman_flags[@]}" build "${build_flags[@]}" -f images/edge.Containerfile \
  --build-context "bins=$context" -t "vigie-edge:$tag" images/ >/dev/null
for image in vigie-cloud vigie-edge; do
  size=$(podman image inspect --format '{{.Size}}' "$image:$tag" | numfmt --to=iec)
  echo "images: $image:$tag $size"
done
