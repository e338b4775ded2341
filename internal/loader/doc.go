// Package loader is where the gateway's runtimes live, each in a package of
// its own, all implementing execution.Backend by relaying jobs to the shim
// Worker (worker/), which creates the guest's isolate with the Worker
// Loader:
//
//   - shim: the wire protocol to the shim: the signed call, the NDJSON
//     stream of events and the checks every line from it passes.
//   - local: a pool of workerd processes on this machine, started and
//     supervised by the gateway (dispatch, probes, kills, memory bounds,
//     quarantine, re-runs).
//   - cloudflare: the shim deployed on Cloudflare: the relay with its circuit
//     breaker, and `gateway deploy`.
//   - loadertest: helpers for tests that run the real workerd.
//
// This package holds no code; its test runs one suite against both
// backends.
package loader
