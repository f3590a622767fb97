#!/usr/bin/env bash
# Builds the vigie-cloud and vigie-edge images with podman, from binaries already built or from a
# release build in a container.
#   images/build.sh PROFILE_DIR TAG     e.g. images/build.sh target/debug test (make test)
#   images/build.sh --release TAG       the builder (images/builder.Containerfile) first (make images)
# The binaries come from PROFILE_DIR (debug sections stripped, as a named build context), the console
# from web/dist; the bases are made locally first when no registry has them (images/make-base.sh,
# images/make-toolchain.sh). Docker image format, so that HEALTHCHECK is kept. Prints each size.
set -euo pipefail
cd "$(dirname "$0")/.."
bins=${1:?usage: images/build.sh PROFILE_DIR|--release TAG}
tag=${2:?usage: images/build.sh PROFILE_DIR|--release TAG}
# The rlimits and the cgroup manager this machine's runtime needs (shared/dependencies.md).
podman_flags=(--runtime runc --cgroup-manager=cgroupfs)
release="" context=""
trap 'rm -rf ${context:+"$context"} ${release:+"$release"}' EXIT
if [ "$bins" = --release ]; then
  toolchain=$(images/make-toolchain.sh)
  release=$(mktemp -d)
  git archive --format=tar HEAD | tar -C "$release" -xf - --one-top-level=source
  # The crates, vendored here from cargo's own cache or crates.io, so the build in the container
  # needs no network (and no trust in this machine's proxies).
  mkdir -p "$release/source/.cargo"
  (cd "$release/source" && cargo vendor --locked --versioned-dirs vendor > .cargo/config.toml 2>/dev/null)
  podman "${podman_flags[@]}" build --ulimit nofile=1024:4096 --ulimit nproc=1024:2048 \
    --network host --build-arg "TOOLCHAIN=$toolchain" -f images/builder.Containerfile \
    --build-context "source=$release/source" --target builder -t vigie-builder:"$tag" images/
  id=$(podman "${podman_flags[@]}" create vigie-builder:"$tag")
  podman "${podman_flags[@]}" cp "$id:/out/." "$release/"
  podman "${podman_flags[@]}" rm "$id" >/dev/null
  bins=$release
fi
for b in vigie-cloud vigie-edge; do
  [ -x "$bins/$b" ] || { echo "images: $bins/$b is missing: build it first" >&2; exit 1; }
done
[ -f web/dist/index.html ] || { echo "images: web/dist is missing: make web" >&2; exit 1; }
images/make-base.sh
# The binaries without their debug sections (a debug build's are most of its size), in a context
# of their own.
context=$(mktemp -d)
for b in vigie-cloud vigie-edge; do
  strip --strip-debug -o "$context/$b" "$bins/$b"
done
# The Pi's settings (the .deb's conffile), baked into the edge image.
cp edge/debian/edge.toml "$context/edge.toml"
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
