//! Vigie's system tests: what is shipped (the container images, the Helm chart's rendered pods) built
//! and run for real on this machine, in `tests/`. The crate has no code of its own; its tests drive
//! the workspace's binaries from `target/PROFILE` and the chart through `charts/tests`.
