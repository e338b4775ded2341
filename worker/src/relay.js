// Turns the capture wrapper's records into the gateway's events. The records
// come from inside the guest's isolate, so each line is checked against the
// contract (records.js) before anything is forwarded; the line splitter is
// linear and refuses a line past the record cap before parsing it; and once
// the result is forwarded the guest's stream is cancelled, so a guest that
// keeps it open after its result holds nothing.

import { parseRecord, recordCap } from "./records.js";
import { LineSplitter, LineTooLong } from "./lines.js";
import { awaitOutcome } from "./tail.js";
import { limitOf } from "./limits.js";
import CONTRACT from "./contract.json" with { type: "json" };

// The stream of each console level (parseRecord takes only these levels).
const STREAMS = CONTRACT.levelStreams;
const encoder = new TextEncoder();

// While the guest is silent the shim sends a ping this often. workerd learns
// that the gateway hung up only when a write fails, so the pings are what
// turn a hang-up into the guest's cancellation within this interval.
export const PING_INTERVAL_MS = 100;

const HUNG = /hung and would never generate a response/;

export const MALFORMED = CONTRACT.malformedRecord;

// result builds a result event.
export function result(error, response, truncated = false) {
  const event = { type: "result", success: error === null };
  if (response) event.response = response;
  if (error) event.error = error;
  if (truncated) event.truncated = true;
  return event;
}

// ndjson returns a streaming response fed by producer(send). When the
// gateway hangs up, workerd cancels the producer; what the execution holds is
// released on request.signal's abort instead (index.js). (A waitUntil task
// would outlive the hang-up, but costs every execution ~0.3 ms.)
export function ndjson(producer) {
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  // send writes one event, or an array of events as one chunk.
  const send = (events) => writer.write(encoder.encode(Array.isArray(events) ? lines(events) : JSON.stringify(events) + "\n"));
  ((async () => {
    try {
      await producer(send);
    } catch (err) {
      await send(result({ code: "exception", message: `shim: ${err.message}` })).catch(() => {});
    }
    await writer.close().catch(() => {});
  })());
  return new Response(readable, { headers: { "content-type": "application/x-ndjson" } });
}

function lines(events) {
  let text = "";
  for (const event of events) text += JSON.stringify(event) + "\n";
  return text;
}

// relay reads the wrapper's records from answer, the guest's response (or
// {reader} of its body) or a promise of it, and forwards them with send. exec: {job, signal, started
// (Date.now() when it began), outbound() -> the requests recorded, locate()
// -> a syntax error's located stack, onStart(emit) -> called once events
// can be sent, failure(err) -> the result of a guest whose answer failed}.
export async function relay(answer, send, exec) {
  let reader = null;
  let over = false;
  // Cancelling the guest's response stream ends the guest's request, and with
  // it the guest's timers and pending I/O.
  const cancel = () => {
    over = true;
    reader?.cancel("the execution ended").catch(() => {});
  };
  exec.signal?.addEventListener("abort", cancel);
  let last = Date.now();
  let ended = false;
  const emit = async (event) => {
    // Nothing follows the result: not a ping, nor the net line of a request
    // that arrives as the execution ends (the ledger, taken here, refuses it).
    if (ended) return;
    last = Date.now();
    if (!Array.isArray(event) && event.type === "result") {
      ended = true;
      event.outbound = exec.outbound();
    }
    try {
      await send(event);
    } catch (err) {
      cancel();
      throw err;
    }
  };
  const pinger = setInterval(() => {
    if (Date.now() - last >= PING_INTERVAL_MS) emit({ type: CONTRACT.pingType }).catch(() => {});
  }, PING_INTERVAL_MS);
  exec.onStart?.(emit);
  try {
    let guest;
    try {
      guest = await answer;
    } catch (err) {
      await emit(await exec.failure(err));
      return;
    }
    reader = guest.reader ?? guest.body.getReader();
    if (over) cancel();
    const finished = await relayRecords(reader, emit, exec);
    if (finished) cancel();
  } finally {
    clearInterval(pinger);
    exec.signal?.removeEventListener("abort", cancel);
  }
}

// collect turns a buffered answer (text: every record the wrapper wrote, no
// line longer than the record cap) into the events' NDJSON, each record
// checked as relay checks it: one body, no stream, no ping.
export async function collect(text, exec) {
  const { job } = exec;
  const opts = { maxResponseBytes: job.maxResponseBytes, maxLogLineBytes: job.maxLogLineBytes };
  const events = [];
  const send = async (e) => {
    if (Array.isArray(e)) events.push(...e);
    else events.push(e);
  };
  let finished = false;
  let start = 0;
  while (!finished && start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line !== "") finished = await forward(line, send, exec, opts, events);
  }
  if (!finished) events.push(await endedWithout(undefined, job));
  events[events.length - 1].outbound = exec.outbound();
  return lines(events);
}

// relayRecords forwards records until the result; it returns whether a
// result was forwarded (else the stream ended first).
async function relayRecords(reader, send, exec) {
  const { job } = exec;
  const opts = { maxResponseBytes: job.maxResponseBytes, maxLogLineBytes: job.maxLogLineBytes };
  const cap = recordCap(opts);
  const splitter = new LineSplitter(cap);
  let failure;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      failure = err;
      break;
    }
    if (chunk.done) break;
    const got = splitter.push(chunk.value);
    if (got === LineTooLong) {
      await send(result({ code: "output_limit", message: `a record from the guest isolate exceeded ${cap} bytes` }));
      return true;
    }
    // The log events of one chunk go out as one write; a result first
    // sends the logs before it.
    const batch = [];
    for (const line of got) {
      if (line === "") continue;
      if (await forward(line, send, exec, opts, batch)) return true;
    }
    if (batch.length > 0) await send(batch);
  }
  await send(await endedWithout(failure, job));
  return false;
}

// endedWithout is the result of a guest whose records ended before its
// result, because of failure (an error, or undefined when its stream just
// ended).
export async function endedWithout(failure, job) {
  const why = failure ? String(failure.message || failure) : "";
  if (HUNG.test(why)) {
    // workerd saw the guest wait on something that can never complete.
    return result({ code: "timeout", message: "the guest waits for something that can never complete (a promise nothing will resolve); the runtime ended it" });
  }
  // The exception says which limit, if any; the tail is asked only when it
  // is silent (on Cloudflare; the local runtime has no tail). job.tail names
  // the isolate whose tail reports and since when (index.js).
  const tail = job.tail === true ? { id: job.id, since: 0 } : job.tail;
  const limit = await limitOf(why, tail ? () => awaitOutcome(tail.id, tail.since) : undefined);
  if (limit !== null) return result(limit);
  return result({ code: "exception", message: `the guest isolate ended without a result${why ? ": " + cleanStack(why) : ""}` });
}

// forward sends the event of one line, a log event by adding it to batch;
// it returns whether that was the result.
async function forward(line, send, exec, opts, batch) {
  const record = parseRecord(line, opts);
  if (record !== null && record.t !== "log" && batch.length > 0) {
    await send(batch.splice(0));
  }
  if (record === null) {
    await send(result({ code: "exception", message: MALFORMED }));
    return true;
  }
  switch (record.t) {
    case "log": {
      const event = {
        type: "log",
        level: record.level,
        stream: STREAMS[record.level],
        message: cleanStack(record.message),
        time: new Date(stamp(record.ms, exec.started)).toISOString(),
      };
      if (record.truncated) event.truncated = true;
      batch.push(event);
      return false;
    }
    case "response": {
      const { status, headers, body, bodyEncoding } = record;
      await send(annotate(result(null, { status, headers, body, bodyEncoding }, record.truncated || record.logsTruncated), record));
      return true;
    }
    case "return": {
      const event = result(null, undefined, record.logsTruncated);
      if (record.value !== undefined) event.returnValue = record.value;
      await send(annotate(event, record));
      return true;
    }
    default: {
      const { code, name, message } = record;
      const text = name && !message.startsWith(name) ? `${name}: ${message}` : message;
      let stack = record.stack && cleanStack(record.stack);
      if (code === "syntax_error" && !hasLocation(stack)) {
        stack = (await exec.locate()) ?? stack;
      }
      await send(annotate(result({ code, message: cleanStack(text), stack }, undefined, record.logsTruncated), record));
      return true;
    }
  }
}

// stamp is when a log happened: the time the wrapper gave it, kept between
// the execution's start and now.
function stamp(ms, started) {
  const now = Date.now();
  if (ms === undefined || ms > now) return now;
  return ms < started ? started : ms; // a top-level log's time is 0 (the epoch)
}

// annotate copies what only the wrapper knows onto a result event: whether
// the isolate was warm.
function annotate(event, record) {
  if (record.warm === true) event.warm = true;
  return event;
}

const location = /\n\s*at [^\n]*:\d+:\d+/;

// hasLocation says whether a stack names a module, line and column.
export function hasLocation(stack) {
  return typeof stack === "string" && location.test(stack);
}

const wrapperFrame = /\n\s*at [^\n]*__dw_(?:wrapper|format)\.js[^\n]*/g;

// cleanStack removes the capture wrapper's frames and the runtime's bundle
// prefix from stack traces, so they show only the guest's own modules.
export function cleanStack(text) {
  if (!text.includes("file:///bundle/")) return text;
  return text.replace(wrapperFrame, "").replaceAll("file:///bundle/", "");
}
