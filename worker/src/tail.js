// Why the platform stopped a guest. On Cloudflare a guest that exceeds its
// CPU or memory limit is killed, and the shim only sees its stream break;
// the guest's tail (this entrypoint, when the gateway asks for it) then
// reports the outcome. Subrequest limits surface as an exception message.

import { WorkerEntrypoint } from "cloudflare:workers";

const outcomes = new Map(); // execution id -> outcome
const waiters = new Map(); // execution id -> resolve

export class Tail extends WorkerEntrypoint {
  tail(events) {
    const { id } = this.ctx.props;
    for (const event of events) {
      if (typeof event.outcome !== "string") continue;
      const resolve = waiters.get(id);
      if (resolve) {
        waiters.delete(id);
        resolve(event.outcome);
      } else {
        outcomes.set(id, event.outcome);
        setTimeout(() => outcomes.delete(id), 5000);
      }
    }
  }
}

// awaitOutcome waits briefly for the tail of an execution to report.
export function awaitOutcome(id, ms = 1000) {
  if (outcomes.has(id)) {
    const outcome = outcomes.get(id);
    outcomes.delete(id);
    return Promise.resolve(outcome);
  }
  return new Promise((resolve) => {
    waiters.set(id, resolve);
    setTimeout(() => {
      waiters.delete(id);
      resolve(undefined);
    }, ms);
  });
}
