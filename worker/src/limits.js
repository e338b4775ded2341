// Maps how Cloudflare stopped a guest to the gateway's error codes. Kept
// apart from tail.js so tests can load it outside the Workers runtime.

const LIMITS = {
  exceededCpu: { code: "cpu_limit", message: "the guest exceeded its CPU time limit (limits.cpuMs)" },
  exceededMemory: { code: "memory_limit", message: "the guest exceeded its memory limit" },
};

// limitOf maps a tail outcome, or failing that the error that ended the
// guest, to a limit error; null if no limit was hit.
export function limitOf(outcome, message = "") {
  if (outcome && LIMITS[outcome]) return LIMITS[outcome];
  if (/exceeded CPU time limit|exceededCpu/i.test(message)) return LIMITS.exceededCpu;
  if (/exceeded (its )?memory limit|exceededMemory/i.test(message)) return LIMITS.exceededMemory;
  if (/too many subrequests/i.test(message)) {
    return { code: "subrequest_limit", message: "the guest made more subrequests than allowed (limits.subRequests)" };
  }
  return null;
}
