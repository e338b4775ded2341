// Classifying why Cloudflare stopped a guest: from the exception its caller
// gets (the Worker Loader docs: a Dynamic Worker over limits.cpuMs or
// limits.subRequests throws at once), the tail only when that says nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { limitOf, limitOfError, limitOfOutcome } from "../src/limits.js";

test("the platform's exceptions map to limit codes, in every shape the caller sees", () => {
  const cases = [
    ["Worker exceeded CPU time limit.", "cpu_limit"],
    ["Error: Worker exceeded CPU time limit.", "cpu_limit"],
    ["exceeded CPU time limit", "cpu_limit"],
    ["Error: Worker exceeded CPU time limit.\n    at async fetch (main.js:3:9)", "cpu_limit"],
    ["Too many subrequests by single Worker invocation.", "subrequest_limit"],
    ["Error: Too many subrequests.", "subrequest_limit"],
    ["TypeError: Too many subrequests by single Worker invocation.", "subrequest_limit"],
    ["Worker exceeded memory limit.", "memory_limit"],
    ["Error: Worker exceeded its memory limit", "memory_limit"],
  ];
  for (const [message, code] of cases) {
    assert.equal(limitOfError(message)?.code, code, message);
  }
});

test("other exceptions are no limit, even when they quote one mid-sentence", () => {
  for (const message of [
    "",
    "boom",
    "TypeError: x is not a function",
    "Script startup exceeded CPU time limit.",
    "Error: my app counts too many subrequests per user",
    "Network connection lost.",
  ]) {
    assert.equal(limitOfError(message), null, message);
  }
});

test("tail outcomes map to limit codes", () => {
  assert.equal(limitOfOutcome("exceededCpu").code, "cpu_limit");
  assert.equal(limitOfOutcome("exceededMemory").code, "memory_limit");
  for (const outcome of ["ok", "exception", "canceled", "subrequests", "__proto__", undefined]) {
    assert.equal(limitOfOutcome(outcome), null, String(outcome));
  }
});

test("the tail is never waited for when the exception already says", async () => {
  let asked = 0;
  const outcome = () => {
    asked++;
    return new Promise(() => {}); // a tail that never reports
  };
  for (const message of ["Worker exceeded CPU time limit.", "Too many subrequests by single Worker invocation."]) {
    assert.notEqual(await limitOf(message, outcome), null);
  }
  assert.equal(asked, 0);
});

test("the tail decides only when the exception is silent", async () => {
  assert.equal((await limitOf("Network connection lost.", async () => "exceededMemory")).code, "memory_limit");
  assert.equal(await limitOf("Network connection lost.", async () => "ok"), null);
  assert.equal(await limitOf("Network connection lost.", async () => undefined), null); // the tail never came
  assert.equal(await limitOf("boom"), null); // no tail asked for (the local runtime)
});
