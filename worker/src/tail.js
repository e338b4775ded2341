// Why the platform stopped a guest. On Cloudflare a guest that exceeds its
// CPU or memory limit is killed, and the shim only sees its stream break;
// the guest's tail (this entrypoint, when the gateway asks for it) then
// reports the outcome. Subrequest limits surface as an exception message.
//
// Every guest isolate gets the tail, a fresh one under its execution's id,
// a reused one under its isolate's id (the warm slot the gateway leases to
// one execution at a time). A reused isolate's tail reports every
// execution it ran, so a report counts for an execution only if its
// invocation started when or after the execution did (the tail event's
// eventTimestamp): an earlier execution's late report in the same isolate
// is never taken for the current one's.
//
// The reports live in this shim isolate's memory. Cloudflare delivers a
// tail event to the shim isolate it chooses, after the invocation ends; it
// does not promise the one whose request is waiting, and nothing shared
// across shim isolates is both strongly consistent and free of a class
// migration (docs/cloudflare.md says why): a report that lands elsewhere is
// missed, and the execution's result says only that the isolate ended
// without a result.

import { WorkerEntrypoint } from "cloudflare:workers";

// KEEP_MS is how long a report no execution has asked for is kept.
const KEEP_MS = 5000;

// MAX_KEPT bounds the reports kept per key (a reused isolate reports
// every execution; only the latest few can be asked for).
const MAX_KEPT = 8;

const reports = new Map(); // key -> [{outcome, at, kept}]
const waiters = new Map(); // key -> [{since, resolve}]

export class Tail extends WorkerEntrypoint {
  tail(events) {
    const { id } = this.ctx.props;
    for (const event of events ?? []) {
      if (typeof event?.outcome !== "string") continue;
      report(id, event.outcome, event.eventTimestamp);
    }
  }
}

// report takes the outcome of an invocation that started at `at` (ms since
// the epoch; null when the platform gives none) in the isolate key names:
// to a waiter it counts for, else kept a while.
export function report(key, outcome, at) {
  const time = Number.isFinite(at) ? at : null;
  const waiting = waiters.get(key) ?? [];
  const i = waiting.findIndex((w) => counts(time, w.since));
  if (i >= 0) {
    const [w] = waiting.splice(i, 1);
    if (waiting.length === 0) waiters.delete(key);
    w.resolve(outcome);
    return;
  }
  const now = Date.now();
  const kept = (reports.get(key) ?? []).filter((r) => now - r.kept < KEEP_MS);
  kept.push({ outcome, at: time, kept: now });
  reports.set(key, kept.slice(-MAX_KEPT));
  setTimeout(() => prune(key), KEEP_MS);
}

// counts says whether a report of an invocation started at `at` may be an
// execution's that started at since: any report for a fresh isolate
// (since 0, its key its own), one that started since then for a reused
// one (none without a time).
function counts(at, since) {
  return since === 0 || (at !== null && at >= since);
}

function prune(key) {
  const now = Date.now();
  const kept = (reports.get(key) ?? []).filter((r) => now - r.kept < KEEP_MS);
  if (kept.length === 0) reports.delete(key);
  else reports.set(key, kept);
}

// awaitOutcome waits up to ms for the tail of the isolate key names to
// report an invocation that started at or after since (0: any, for a
// fresh isolate); it resolves to the outcome, or undefined.
export function awaitOutcome(key, since = 0, ms = 1000) {
  const kept = reports.get(key) ?? [];
  for (let i = kept.length - 1; i >= 0; i--) {
    if (counts(kept[i].at, since)) {
      const [r] = kept.splice(i, 1);
      if (kept.length === 0) reports.delete(key);
      return Promise.resolve(r.outcome);
    }
  }
  return new Promise((resolve) => {
    const w = { since, resolve };
    const waiting = waiters.get(key) ?? [];
    waiting.push(w);
    waiters.set(key, waiting);
    setTimeout(() => {
      const list = waiters.get(key) ?? [];
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) waiters.delete(key);
      resolve(undefined);
    }, ms);
  });
}

// reportsHeld is how many reports this shim isolate keeps, no execution
// having asked for them yet, and how many of them carry the time their
// invocation started, which a reused isolate's need (for tests, through
// /stats).
export function reportsHeld() {
  let held = 0;
  let timed = 0;
  for (const kept of reports.values()) {
    held += kept.length;
    timed += kept.filter((r) => r.at !== null).length;
  }
  return { held, timed };
}
