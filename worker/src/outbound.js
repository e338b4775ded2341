// The guest's only way out. When an execution may use the network, its
// isolate's globalOutbound is this entrypoint (with the execution's policy
// as props), so every fetch() the guest makes passes through here: it is
// reported to the shim (ledger.js: the first one of an execution makes the
// shim tell the gateway), checked against the policy, recorded, and only then
// sent, through the shim's own network service (which again refuses
// non-public addresses after DNS resolution). Guest code cannot bypass or
// change it. props.key names the execution in the ledger: its id in a fresh
// isolate, the warm isolate's id in reuse mode.

import { WorkerEntrypoint } from "cloudflare:workers";
import { decide } from "./egress.js";
import { arrive, FULL } from "./ledger.js";
import CAPS from "./caps.json" with { type: "json" };

// How workerd's network service refuses a connection. The runtime this
// gateway pins says only "internal error; reference = <id>" to JavaScript and
// writes the reason to its own log under that id ("connecting to A:P is not
// allowed" for its peer filter, "failed to lookup address information" for a
// name that does not resolve, or a TLS failure). So for an IP literal, which
// needs no lookup, an internal error is the peer filter's refusal: denied.
// For a name it is ambiguous and recorded as failed, with the reference for
// the operator. Runtimes that spell the refusal out are matched by SPELLED.
// A policy denial is thrown from here and writes nothing to workerd's log; a
// refusal by the network service writes two lines (the internal error and
// its stack), which the shim cannot prevent: the gateway rate-limits them.
const SPELLED = /is not allowed|not permitted|blocked by restrictPeers/;
const INTERNAL = /^internal error; reference = /;

function refused(url, message) {
  if (SPELLED.test(message)) return true;
  const literal = url.hostname.startsWith("[") || /^[0-9.]+$/.test(url.hostname);
  return literal && INTERNAL.test(message);
}

// forward rebuilds the guest's request from the members a request on the
// wire has: no `cf` options, no other init members (signal, integrity,
// cache, fetcher) the guest may have set.
function forward(request) {
  const init = { method: request.method, headers: request.headers, redirect: request.redirect };
  if (request.method !== "GET" && request.method !== "HEAD") init.body = request.body;
  return new Request(request.url, init);
}

export class Outbound extends WorkerEntrypoint {
  async fetch(request) {
    const { key, hosts, deny, denyHosts } = this.ctx.props;
    const url = new URL(request.url);
    const entry = await arrive(key, request.method, request.url);
    if (entry === null) {
      throw new Error(`outbound request to ${url.host} denied: its execution has ended`);
    }
    if (entry === FULL) {
      throw new Error(`outbound request to ${url.host} denied: the execution made ${CAPS.maxOutboundRecords} requests, its most`);
    }
    const why = decide(url, { hosts, deny, denyHosts });
    if (why !== null) {
      entry.denied = true;
      throw new Error(`outbound request to ${url.host} denied: ${why}`);
    }
    let response;
    try {
      response = await fetch(forward(request));
    } catch (err) {
      const message = String(err && err.message || err);
      if (refused(url, message)) {
        entry.denied = true;
        throw new Error(`outbound request to ${url.host} denied: the runtime refused to connect to an address that is not public (${message})`);
      }
      throw new Error(`outbound request to ${url.host} failed: ${message}`);
    }
    entry.status = response.status;
    return response;
  }
}
