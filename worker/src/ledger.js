// What the Outbound entrypoint knows about the executions running now. An
// execution is registered under the key its isolate's Outbound props carry
// (the execution id in a fresh isolate, the warm isolate's id in reuse mode,
// where an isolate runs one execution at a time) from before its guest starts
// until it ends, however it ends. Requests are recorded only while an
// execution is registered; a request under a key whose execution has ended
// here (a timer left behind) is refused. A key this isolate never registered
// means the platform ran the entrypoint in another isolate of the shim (on
// Cloudflare it may): that request is allowed by policy as before but cannot
// be recorded or reported. Kept apart from outbound.js so node tests can
// load it.
//
// The entrypoint and the execution run in different request contexts of the
// shim, and workerd lets neither wait on the other's I/O: the entrypoint only
// resolves a promise the execution created (workerd runs the continuation in
// the execution's context) and then polls a flag, with timers of its own, for
// the execution to say it has told the gateway. The execution learns of
// every request the same way (next), to announce each to the gateway as it
// is made: the gateway keeps them, so that an execution run again lists the
// calls of every run.

import CAPS from "./caps.json" with { type: "json" };

const MAX_RECORDS = CAPS.maxOutboundRecords;
const POLL_MS = 1;
const MAX_ENDED = 4096;
const open = new Map(); // key -> entry
const ended = new Map(); // keys whose execution ended here, oldest first

// begin registers an execution under key, traced under trace (the job's
// W3C traceparent, or undefined: traceOf). It returns {first, next, confirm,
// take}: first resolves when the guest's first outbound request arrives;
// that request waits until confirm() is called (the gateway was told) or the
// execution ends. next() resolves with the requests recorded since the last
// next() (as soon as there is one), or with null once the execution has
// ended. take() ends the registration and returns the requests recorded; it
// may be called more than once.
export function begin(key, trace) {
  let arrived;
  const first = new Promise((resolve) => {
    arrived = resolve;
  });
  const entry = { records: [], arrived, confirmed: false, closed: false, calls: new Map(), announced: 0, wake: null, trace };
  open.set(key, entry);
  ended.delete(key);
  return {
    first,
    next: () =>
      // Made here, in the execution's context, and resolved here or by
      // arrive (in the entrypoint's context) or take.
      new Promise((resolve) => {
        const deliver = () => {
          if (entry.records.length > entry.announced) {
            const fresh = entry.records.slice(entry.announced);
            entry.announced = entry.records.length;
            entry.wake = null;
            resolve(fresh);
          } else if (entry.closed) {
            entry.wake = null;
            resolve(null);
          }
        };
        entry.wake = deliver;
        deliver();
      }),
    confirm: () => {
      entry.confirmed = true;
    },
    take: () => {
      entry.closed = true;
      if (open.get(key) === entry) {
        open.delete(key);
        remember(key);
      }
      entry.wake?.();
      return entry.records;
    },
  };
}

function remember(key) {
  ended.set(key, true);
  if (ended.size > MAX_ENDED) ended.delete(ended.keys().next().value);
}

// FULL is what arrive returns for a request past an execution's
// MAX_RECORDS: it is refused, so that every request that goes out is in
// the execution's records (a guest cannot fill them with refused requests
// and then go out unrecorded).
export const FULL = Object.freeze({ full: true });

// arrive is the Outbound and Capability entrypoints' report of a request:
// it returns the record to complete (with status or denied), null when the
// execution under key has ended (also while the request waited), or FULL.
// A key never registered here gets a record kept nowhere. capability, if
// given, names the capability a call goes through.
export async function arrive(key, method, url, capability) {
  const record = capability === undefined ? { method, url } : { method, url, capability };
  const entry = open.get(key);
  if (entry === undefined) return ended.has(key) ? null : record;
  if (entry.records.length >= MAX_RECORDS) return FULL;
  entry.records.push(record);
  entry.wake?.();
  if (entry.arrived !== null) {
    entry.arrived();
    entry.arrived = null;
  }
  while (!entry.confirmed && !entry.closed) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if (entry.closed) {
    record.denied = true;
    return null;
  }
  return record;
}

// Calls of capabilities under keys never registered here (the platform ran
// the entrypoint in another isolate of the shim): counted here instead, the
// most recent MAX_ENDED keys.
const strays = new Map();

// countCall counts a call of the capability name by the execution under
// key and returns how many there have been, this one included: the
// Capability entrypoint refuses calls past the capability's max_calls.
export function countCall(key, name) {
  let calls = open.get(key)?.calls;
  if (calls === undefined) {
    calls = strays.get(key) ?? new Map();
    strays.delete(key);
    strays.set(key, calls);
    if (strays.size > MAX_ENDED) strays.delete(strays.keys().next().value);
  }
  const n = (calls.get(name) ?? 0) + 1;
  calls.set(name, n);
  return n;
}

// traceOf is the traceparent of the execution registered under key, or
// undefined (not traced, or registered in another isolate of the shim). A
// warm isolate's capability props are fixed when it is made: the trace of
// the execution running in it now is here.
export function traceOf(key) {
  return open.get(key)?.trace;
}

// size is how many executions are registered (for tests: it must come back
// to zero).
export function size() {
  return open.size;
}
