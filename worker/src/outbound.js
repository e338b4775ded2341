// The guest's only way out. When an execution may use the network, its
// isolate's globalOutbound is this entrypoint (with the execution's policy
// as props), so every fetch() the guest makes passes through here: it is
// checked against the policy, recorded, and only then sent, through the
// shim's own network service (which again refuses non-public addresses
// after DNS resolution). Guest code cannot bypass or change it.

import { WorkerEntrypoint } from "cloudflare:workers";
import { decide } from "./egress.js";

const MAX_RECORDS = 1000;
const records = new Map(); // execution id -> [{method, url, status?, denied?}]

// takeOutbound returns and forgets what an execution's guest attempted.
export function takeOutbound(id) {
  const list = records.get(id) ?? [];
  records.delete(id);
  return list;
}

function record(id, entry) {
  let list = records.get(id);
  if (list === undefined) {
    list = [];
    records.set(id, list);
  }
  if (list.length < MAX_RECORDS) list.push(entry);
  return entry;
}

export class Outbound extends WorkerEntrypoint {
  async fetch(request) {
    const { id, hosts, deny } = this.ctx.props;
    const url = new URL(request.url);
    // A reused isolate's executions share this entrypoint; the wrapper
    // records their requests instead (id is null then).
    const entry = id === null ? {} : record(id, { method: request.method, url: request.url });
    const why = decide(url, { hosts, deny });
    if (why !== null) {
      entry.denied = true;
      throw new Error(`outbound request to ${url.host} denied: ${why}`);
    }
    try {
      const response = await fetch(request);
      entry.status = response.status;
      return response;
    } catch (err) {
      const message = String(err && err.message || err);
      if (/is not allowed|not permitted/.test(message)) {
        // workerd's network service: the name resolved to a non-public address.
        entry.denied = true;
        throw new Error(`outbound request to ${url.host} denied: it resolves to an address that is not public`);
      }
      throw new Error(`outbound request to ${url.host} failed: ${message}`);
    }
  }
}
