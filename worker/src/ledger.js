// What the Outbound entrypoint knows about the executions running now. An
// execution is registered under the key its isolate's Outbound props carry
// (the execution id in a fresh isolate, the warm isolate's id in reuse mode,
// where an isolate runs one execution at a time) from before its guest starts
// until it ends, however it ends. Requests are recorded only while an
// execution is registered; a request from an isolate with no execution
// registered (a timer left behind by one that ended) is refused. Kept apart
// from outbound.js so node tests can load it.
//
// The entrypoint and the execution run in different request contexts of the
// shim, and workerd lets neither wait on the other's I/O: the entrypoint only
// resolves a promise the execution created (workerd runs the continuation in
// the execution's context) and then polls a flag, with timers of its own, for
// the execution to say it has told the gateway.

const MAX_RECORDS = 1000;
const POLL_MS = 1;
const open = new Map(); // key -> entry

// begin registers an execution under key. It returns {first, confirm, take}:
// first resolves when the guest's first outbound request arrives; that
// request waits until confirm() is called (the gateway was told) or the
// execution ends. take() ends the registration and returns the requests
// recorded; it may be called more than once.
export function begin(key) {
  let arrived;
  const first = new Promise((resolve) => {
    arrived = resolve;
  });
  const entry = { records: [], arrived, confirmed: false, closed: false };
  open.set(key, entry);
  return {
    first,
    confirm: () => {
      entry.confirmed = true;
    },
    take: () => {
      entry.closed = true;
      if (open.get(key) === entry) open.delete(key);
      return entry.records;
    },
  };
}

// arrive is the Outbound entrypoint's report of a request: it returns the
// record to complete (with status or denied), or null when no execution is
// registered under key or it ended while the request waited.
export async function arrive(key, method, url) {
  const entry = open.get(key);
  if (entry === undefined) return null;
  const record = { method, url };
  if (entry.records.length < MAX_RECORDS) entry.records.push(record);
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

// size is how many executions are registered (for tests: it must come back
// to zero).
export function size() {
  return open.size;
}
