// Maps how Cloudflare stopped a guest to the gateway's error codes. Kept
// apart from tail.js so tests can load it outside the Workers runtime.
//
// The Worker Loader docs say a Dynamic Worker over its limits.cpuMs or
// limits.subRequests "will immediately throw an exception" in its caller,
// so the exception is read first; the guest's tail outcome (exceededCpu,
// exceededMemory) is asked for only when the exception says nothing, and
// never when it already does.

const LIMITS = {
  exceededCpu: { code: "cpu_limit", message: "the guest exceeded its CPU time limit (limits.cpuMs)" },
  exceededMemory: { code: "memory_limit", message: "the guest exceeded its memory limit" },
  subrequests: { code: "subrequest_limit", message: "the guest made more subrequests than allowed (limits.subRequests)" },
};

// The exceptions' messages, as the platform writes them ("Worker exceeded
// CPU time limit.", "Too many subrequests by single Worker invocation.",
// "Worker exceeded memory limit."), whatever prefix the runtime adds. A
// script's startup over its CPU budget is not the guest's cpuMs.
const EXCEPTIONS = [
  [/^(?:[\w.]*Error: )?(?:Worker )?exceeded CPU time limit\b|\bexceededCpu\b/im, LIMITS.exceededCpu],
  [/^(?:[\w.]*Error: )?(?:Worker )?exceeded (?:its )?memory limit\b|\bexceededMemory\b/im, LIMITS.exceededMemory],
  [/^(?:[\w.]*Error: )?Too many subrequests\b/im, LIMITS.subrequests],
];

// limitOfError maps the exception that ended a guest to a limit error;
// null if it names none.
export function limitOfError(message = "") {
  const text = String(message);
  for (const [pattern, limit] of EXCEPTIONS) {
    if (pattern.test(text)) return limit;
  }
  return null;
}

// limitOfOutcome maps a tail outcome to a limit error; null if none.
export function limitOfOutcome(outcome) {
  return (typeof outcome === "string" && Object.hasOwn(LIMITS, outcome) && outcome !== "subrequests") ? LIMITS[outcome] : null;
}

// limitOf classifies a guest that ended without a result: from its
// exception's message, at once; else, if outcome is given, from the tail
// outcome it resolves to (the only wait, and only when the exception
// said nothing).
export async function limitOf(message, outcome) {
  const limit = limitOfError(message);
  if (limit !== null || outcome === undefined) return limit;
  return limitOfOutcome(await outcome());
}
