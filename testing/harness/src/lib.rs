//! Test support shared by the integration tests, the benchmark and the
//! walkthroughs. The pieces are one idea — run our binaries and clients the
//! way AWS would, on this machine — so they live in one package:
//!
//! * [`moto`]: the moto server that `scripts/test` starts, and AWS clients
//!   pointed at it (pools, users, keys, the SMS moto recorded).
//! * [`runtime_api`]: a local Lambda Runtime API that spawns a function
//!   binary as Lambda does, feeds it events and times it.
//! * [`tls_front`]: an HTTPS front with a CA of its own, optionally slow to
//!   connect, for custom-CA tests and the first-invocation benchmark.
//! * [`fault_proxy`]: an HTTP proxy in front of moto that answers 500s,
//!   throttling errors or slow responses on demand.
//! * [`pool_gen`]: a moto user pool with thousands of users in every state
//!   `mfa-admin audit` counts, and the counts it must report.
//!
//! Never a dependency of a deployed function (`scripts/check-deps`).

pub mod fault_proxy;
pub mod moto;
pub mod pool_gen;
pub mod runtime_api;
pub mod tls_front;
