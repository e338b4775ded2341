// Mapping Cloudflare's outcomes and limit errors to the gateway's codes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { limitOf } from "../src/limits.js";

test("tail outcomes map to limit codes", () => {
  assert.equal(limitOf("exceededCpu").code, "cpu_limit");
  assert.equal(limitOf("exceededMemory").code, "memory_limit");
  assert.equal(limitOf("ok"), null);
  assert.equal(limitOf("exception", "boom"), null);
  assert.equal(limitOf(undefined), null);
});

test("error messages map when no tail reported", () => {
  assert.equal(limitOf(undefined, "Worker exceeded CPU time limit.").code, "cpu_limit");
  assert.equal(limitOf(undefined, "Worker exceeded memory limit").code, "memory_limit");
  assert.equal(limitOf(undefined, "Error: Too many subrequests.").code, "subrequest_limit");
});
