// The channel: one WebSocket from the gateway to the local runtime process,
// authenticated once when it opens (a signed GET of /channel, auth.js), on
// which executions and their events are multiplexed. An execution costs one
// message each way instead of an HTTP exchange with its HMAC.
//
// Every message is binary: a kind byte, a 4-byte execution id (big-endian,
// the gateway's), then the payload. The gateway sends
//
//   J  a piece of a job's JSON (more follow)
//   E  the job's last piece: the shim runs it
//   C  credit: a 4-byte count of bytes the gateway has read of the execution
//   X  cancel: the gateway stopped reading (timeout, caller gone)
//
// and the shim answers each execution with
//
//   H  the answer's status (2 bytes), as /run's HTTP status
//   D  a piece of the answer's body: /run's NDJSON events, the same framing
//   F  the answer ended
//   W  the whole answer at once: its status (2 bytes) and its body, for an
//      answer complete when it is made (most: a buffered execution that ended
//      within a ping interval) and small enough for one piece
//
// Flow control is per execution: the shim sends at most WINDOW bytes the
// gateway has not acknowledged with credit, so a slow caller stalls only its
// own execution (its relay, then its guest, wait), never the channel. Pieces
// are at most PIECE bytes, far under workerd's 32 MiB message limit.
//
// Everything the execution holds is released when it ends, when the gateway
// cancels it, and when the channel closes (the gateway went away). Isolates
// made by LOADER.load on a channel live until the channel closes, so the
// local gateway sends only warm executions (LOADER.get) on it, and moves to
// a new channel after a few fresh ones when asked to carry them
// (shim.Channels).

import CAPS from "./caps.json" with { type: "json" };

export const WINDOW = CAPS.channelWindowBytes;
export const PIECE = CAPS.channelPieceBytes;

const K_PIECE = 0x4a; // J
const K_END = 0x45; // E
const K_CREDIT = 0x43; // C
const K_CANCEL = 0x58; // X
const K_HEAD = 0x48; // H
const K_DATA = 0x44; // D
const K_FIN = 0x46; // F
const K_WHOLE = 0x57; // W

// WHOLE holds the Responses that are complete when made (index.js adds them):
// the channel reads such a body at once and sends it in one message.
export const WHOLE = new WeakSet();

// Whole is an answer of status 200 complete when made, its body as bytes
// (most answers: a buffered execution that ended within a ping interval).
// The channel sends it without a stream or a Response between (index.js
// makes /run's Response of it).
export class Whole {
  constructor(bytes) {
    this.bytes = bytes;
  }
}

// open answers a signed upgrade with the channel's end; handle(bytes, signal)
// runs one job (its JSON as bytes) as /run would and resolves to the Response
// /run would answer with.
export function open(handle) {
  const [client, server] = Object.values(new WebSocketPair());
  server.accept();
  // From compatibility date 2026-03-17 binary messages arrive as Blobs
  // unless asked for as ArrayBuffers.
  server.binaryType = "arraybuffer";
  const executions = new Map(); // id -> execution state
  let closed = false;
  const send = (kind, id, payload) => {
    if (closed) return;
    const frame = new Uint8Array(5 + (payload?.length ?? 0));
    frame[0] = kind;
    new DataView(frame.buffer).setUint32(1, id);
    if (payload) frame.set(payload, 5);
    try {
      server.send(frame);
    } catch {
      shut();
    }
  };
  // sendWhole sends a W message: the status and the body in one frame.
  const sendWhole = (id, status, body) => {
    if (closed) return;
    const frame = new Uint8Array(7 + body.length);
    frame[0] = K_WHOLE;
    new DataView(frame.buffer).setUint32(1, id);
    frame[5] = status >> 8;
    frame[6] = status & 0xff;
    frame.set(body, 7);
    try {
      server.send(frame);
    } catch {
      shut();
    }
  };
  const shut = () => {
    if (closed) return;
    closed = true;
    for (const x of executions.values()) x.stop();
    executions.clear();
    try {
      server.close(1000, "closed");
    } catch {
      // already closed
    }
  };
  server.addEventListener("close", shut);
  server.addEventListener("error", shut);
  server.addEventListener("message", (message) => {
    try {
      receive(message.data);
    } catch {
      shut(); // an exception here would close the channel anyway
    }
  });
  const receive = (data) => {
    if (!(data instanceof ArrayBuffer) || data.byteLength < 5) {
      shut(); // not the gateway's framing
      return;
    }
    const frame = new Uint8Array(data);
    const id = new DataView(data).getUint32(1);
    const kind = frame[0];
    let x = executions.get(id);
    if (kind === K_PIECE || kind === K_END) {
      if (x === undefined) {
        x = execution(id, send, sendWhole, () => executions.delete(id));
        executions.set(id, x);
      }
      x.piece(frame.subarray(5), kind === K_END, handle);
    } else if (kind === K_CREDIT && x !== undefined && frame.length === 9) {
      x.credit(new DataView(data).getUint32(5));
    } else if (kind === K_CANCEL) {
      x?.stop();
    } else if (kind !== K_CREDIT && kind !== K_CANCEL) {
      shut();
    }
  };
  return new Response(null, { status: 101, webSocket: client });
}

const encoder = new TextEncoder();

// execution is one job on the channel: its pieces gathered, then run, its
// answer pumped back within its credit.
function execution(id, send, sendWhole, forget) {
  const controller = new AbortController();
  const pieces = [];
  let size = 0;
  let credit = WINDOW;
  let wake = null; // resolves a pump waiting for credit
  let reader = null;
  let stopped = false;
  const x = {
    piece(bytes, last, handle) {
      if (stopped) return;
      size += bytes.length;
      if (size > CAPS.maxJobBytes) {
        answer(Response.json({ message: `the call's body exceeds ${CAPS.maxJobBytes} bytes` }, { status: 413 }));
        return;
      }
      pieces.push(bytes.slice());
      if (!last) return;
      const job = join(pieces, size);
      pieces.length = 0;
      Promise.resolve()
        .then(() => handle(job, controller.signal))
        .then(answer, (err) => answer(Response.json({ message: `shim: ${err?.message ?? err}` }, { status: 500 })));
    },
    credit(n) {
      credit += n;
      wake?.();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      forget();
      controller.abort(new Error("the gateway cancelled the execution"));
      reader?.cancel("the gateway cancelled the execution").catch(() => {});
      wake?.();
    },
  };
  async function answer(response) {
    if (response instanceof Whole) {
      if (stopped) return;
      const body = response.bytes;
      if (body.length <= Math.min(PIECE, credit)) {
        stopped = true;
        forget();
        sendWhole(id, 200, body);
        return;
      }
      response = new Response(body);
    }
    if (stopped) {
      await response.body?.cancel().catch(() => {});
      return;
    }
    const status = new Uint8Array([response.status >> 8, response.status & 0xff]);
    if (response.body === null) {
      send(K_HEAD, id, status);
      finish();
      return;
    }
    if (WHOLE.has(response)) {
      const body = new Uint8Array(await response.arrayBuffer());
      if (stopped) return;
      if (body.length <= Math.min(PIECE, credit)) {
        stopped = true;
        forget();
        sendWhole(id, response.status, body);
        return;
      }
      response = new Response(body, { status: response.status });
    }
    send(K_HEAD, id, status);
    reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || stopped) break;
        const bytes = typeof value === "string" ? encoder.encode(value) : value;
        for (let off = 0; off < bytes.length && !stopped; off += PIECE) {
          while (credit <= 0 && !stopped) await new Promise((resolve) => (wake = resolve));
          if (stopped) break;
          const piece = bytes.subarray(off, off + PIECE);
          credit -= piece.length;
          send(K_DATA, id, piece);
        }
      }
    } catch {
      // the answer's stream failed: the gateway sees it end without its result
    }
    finish();
  }
  function finish() {
    if (stopped) return;
    stopped = true;
    forget();
    send(K_FIN, id, null);
  }
  return x;
}

function join(pieces, size) {
  if (pieces.length === 1) return pieces[0];
  const all = new Uint8Array(size);
  let offset = 0;
  for (const p of pieces) {
    all.set(p, offset);
    offset += p.length;
  }
  return all;
}
