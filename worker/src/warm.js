// The warm isolates of reuse mode. A reused isolate runs one execution at a
// time, so concurrent executions never share its console or output state:
// per reuse key the shim keeps up to MAX_WARM isolates, named key, key#1,
// key#2, …; an execution takes an idle one, or the next name while there are
// fewer than MAX_WARM, or waits for one to be released. Kept apart from
// index.js so node tests can load it.

import CAPS from "./caps.json" with { type: "json" };

export const MAX_WARM = CAPS.maxWarmIsolates;

const pools = new Map(); // reuse key -> {busy: Set<slot>, waiters: [resolve]}

function slotName(key, slot) {
  return slot === 0 ? key : `${key}#${slot}`;
}

// acquire resolves to {id, release} for an idle warm isolate of key; release
// must be called once the execution ends. If signal aborts while waiting, it
// rejects with signal.reason.
export function acquire(key, signal) {
  let pool = pools.get(key);
  if (pool === undefined) {
    pool = { busy: new Set(), waiters: [] };
    pools.set(key, pool);
  }
  for (let slot = 0; slot < MAX_WARM; slot++) {
    if (!pool.busy.has(slot)) return Promise.resolve(take(key, pool, slot));
  }
  return new Promise((resolve, reject) => {
    // release() runs in another request's context; a timer of this one's
    // keeps workerd from taking this request for hung while it waits.
    const keepalive = setInterval(() => {}, 50);
    const waiter = (slot) => {
      clearInterval(keepalive);
      resolve(take(key, pool, slot));
    };
    pool.waiters.push(waiter);
    signal?.addEventListener("abort", () => {
      const i = pool.waiters.indexOf(waiter);
      if (i >= 0) pool.waiters.splice(i, 1);
      clearInterval(keepalive);
      reject(signal.reason ?? new Error("aborted"));
    }, { once: true });
  });
}

function take(key, pool, slot) {
  pool.busy.add(slot);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    const next = pool.waiters.shift();
    if (next !== undefined) {
      next(slot); // the slot passes straight to the next execution
      return;
    }
    pool.busy.delete(slot);
    if (pool.busy.size === 0) pools.delete(key);
  };
  return { id: slotName(key, slot), release };
}

// busyCount is how many warm isolates of key are running an execution.
export function busyCount(key) {
  return pools.get(key)?.busy.size ?? 0;
}
