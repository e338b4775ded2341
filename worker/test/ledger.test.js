// The Outbound entrypoint's ledger of running executions: records are taken
// whatever way an execution ends, the first request waits for the gateway to
// be told, and nothing is recorded for an execution that has ended.
import { test } from "node:test";
import assert from "node:assert/strict";
import { begin, arrive, size, FULL } from "../src/ledger.js";
import CAPS from "../src/caps.json" with { type: "json" };

// settled resolves once every promise that can settle has: a turn of the
// event loop after the microtasks pending now and those they queue.
const settled = () => new Promise((resolve) => setImmediate(resolve));

test("the first request waits until the net line is confirmed", async () => {
  const ledger = begin("exec-first");
  let firstSeen = 0;
  ledger.first.then(() => firstSeen++);
  let went = false;
  const pending = arrive("exec-first", "GET", "https://a.example/").then((r) => {
    went = true;
    return r;
  });
  await ledger.first;
  await settled();
  assert.equal(went, false, "the request went on before the gateway was told");
  ledger.confirm();
  const record = await pending;
  assert.deepEqual(record, { method: "GET", url: "https://a.example/" });
  record.status = 200;
  const second = await arrive("exec-first", "POST", "https://b.example/");
  second.denied = true;
  assert.equal(firstSeen, 1);
  assert.deepEqual(ledger.take(), [
    { method: "GET", url: "https://a.example/", status: 200 },
    { method: "POST", url: "https://b.example/", denied: true },
  ]);
  assert.equal(size(), 0);
});

test("nothing is recorded or sent for an execution that has ended", async () => {
  // A key never registered in this isolate: the platform ran the entrypoint
  // elsewhere. The request is not refused, and not recorded.
  assert.deepEqual(await arrive("never-registered", "GET", "https://a.example/"), { method: "GET", url: "https://a.example/" });
  assert.equal(size(), 0);
  const ledger = begin("exec-ended");
  ledger.confirm();
  ledger.take();
  assert.equal(await arrive("exec-ended", "GET", "https://a.example/"), null);
  // A request that waits for the net line when the execution ends is refused.
  const waiting = begin("exec-ends-while-waiting");
  const pending = arrive("exec-ends-while-waiting", "GET", "https://a.example/");
  await waiting.first;
  assert.deepEqual(waiting.take(), [{ method: "GET", url: "https://a.example/" }]);
  assert.equal(await pending, null);
  assert.equal(size(), 0);
});

// How an execution ends, as the shim's run() sees it: its finally always
// takes the ledger.
const endings = {
  result: async () => {},
  throw: async () => {
    throw new Error("guest threw");
  },
  timeout: () => new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), 2)),
  hangup: () => Promise.reject(new DOMException("the caller went away", "AbortError")),
};

test("after many executions that fetch and end every way, the ledger is empty", async () => {
  const runs = [];
  for (let i = 0; i < 200; i++) {
    const [how, end] = Object.entries(endings)[i % 4];
    runs.push((async () => {
      const ledger = begin(`exec-${how}-${i}`);
      ledger.first.then(ledger.confirm);
      try {
        const r = await arrive(`exec-${how}-${i}`, "GET", `https://x.example/${i}`);
        if (r) r.status = 200;
        await end();
      } catch {
        // the execution's failure is reported elsewhere
      } finally {
        ledger.take();
      }
    })());
  }
  await Promise.all(runs);
  assert.equal(size(), 0);
});

test("a warm isolate between executions has its requests refused", async () => {
  const first = begin("warm#2");
  first.confirm();
  first.take();
  assert.equal(await arrive("warm#2", "GET", "https://late.example/"), null);
  const second = begin("warm#2");
  second.confirm();
  assert.notEqual(await arrive("warm#2", "GET", "https://a.example/"), null);
  assert.deepEqual(second.take(), [{ method: "GET", url: "https://a.example/" }]);
});

test("a re-used key does not let an ended registration remove the new one", async () => {
  const old = begin("warm#1");
  old.take();
  const current = begin("warm#1");
  old.take();
  assert.equal(size(), 1);
  current.confirm();
  assert.notEqual(await arrive("warm#1", "GET", "https://a.example/"), null);
  current.take();
  assert.equal(size(), 0);
});

test("an execution keeps its first maxOutboundRecords requests (caps.json); past them requests are refused (FULL)", async () => {
  const ledger = begin("exec-cap");
  ledger.confirm();
  const n = CAPS.maxOutboundRecords + 5;
  const records = [];
  for (let i = 0; i < n; i++) records.push(await arrive("exec-cap", "GET", `https://a.example/${i}`));
  assert.equal(records.filter((r) => r !== null && r !== FULL).length, CAPS.maxOutboundRecords);
  assert.deepEqual(records.slice(CAPS.maxOutboundRecords), Array(5).fill(FULL), "a request past the cap went out unrecorded");
  const kept = ledger.take();
  assert.equal(kept.length, CAPS.maxOutboundRecords);
  assert.equal(kept.at(-1).url, `https://a.example/${CAPS.maxOutboundRecords - 1}`);
});

test("next hands over every request as it arrives, in order, then null once the execution ends", async () => {
  const ledger = begin("exec-next");
  const seen = [];
  const announcing = (async () => {
    for (let calls = await ledger.next(); calls !== null; calls = await ledger.next()) {
      seen.push(...calls.map((c) => `${c.method} ${c.url}${c.capability ? " via " + c.capability : ""}`));
      ledger.confirm();
    }
  })();
  await arrive("exec-next", "GET", "https://a.example/1");
  // Two at once, and one through a capability.
  await Promise.all([arrive("exec-next", "POST", "https://a.example/2"), arrive("exec-next", "PUT", "/api/3", "orders")]);
  await settled();
  assert.deepEqual(seen, ["GET https://a.example/1", "POST https://a.example/2", "PUT /api/3 via orders"]);
  // Requests made while nobody waits on next are handed over at the next call.
  ledger.take();
  await announcing;
  assert.deepEqual(seen.length, 3);
  const late = begin("exec-late");
  await Promise.all([arrive("exec-late", "GET", "https://b.example/"), (async () => late.confirm())()]);
  assert.deepEqual(await late.next(), [{ method: "GET", url: "https://b.example/" }]);
  late.take();
  assert.equal(await late.next(), null);
  assert.equal(size(), 0);
});
