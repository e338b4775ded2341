// Masking a capability's configured values (its secrets) in what its
// service answers, before the guest sees it (capability.js). Kept apart so
// node tests and worker/bench/mask.mjs can load it.
//
// A body is masked without a scan per secret, whatever their number,
// by a matcher built once per set of secrets (and kept for the
// next call with the same set). Each secret is found by its anchor, a byte
// rare in answers, with the runtime's own search (indexOf), and compared
// where the anchor stands; where anchors abound, or there are too many
// secrets, an Aho-Corasick automaton over the secrets' UTF-8 bytes reads
// every byte once instead, so the work stays linear in the answer's length
// whatever it holds. Where matches overlap the leftmost wins, then the
// longest (as a scan trying every position, longest secret first, would
// choose). A stream keeps back only the bytes that may still begin a
// secret: those of the automaton's state at the end of a piece.

import CONTRACT from "./contract.json" with { type: "json" };

// What a masked value reads as, in what the gateway masks too (redact.Text).
export const MASK = CONTRACT.mask;

const encoder = new TextEncoder();
const MASK_BYTES = encoder.encode(MASK);

// maskText replaces every secret in s with MASK, longest first: a header
// value, a status text, an error message.
export function maskText(s, secrets) {
  let out = s;
  for (const secret of sortedSecrets(secrets)) out = out.split(secret).join(MASK);
  return out;
}

function sortedSecrets(secrets) {
  return [...new Set(secrets.filter((s) => typeof s === "string" && s !== ""))].sort((a, b) => b.length - a.length);
}

// maskHeaders returns a copy of headers with every secret masked in the
// values, without the headers whose name holds one (a masked name would
// not be a header name).
export function maskHeaders(headers, secrets) {
  const out = new Headers();
  for (const [name, value] of headers) {
    if (maskText(name, secrets) === name) out.append(name, maskText(value, secrets));
  }
  return out;
}

// maskBody returns body (a ReadableStream of bytes) with every secret's
// UTF-8 bytes replaced by MASK, also where a secret is split between
// chunks. Past limit bytes (if given) the stream ends with an error whose
// message is tooLong(limit): the bound on the work one answer may cost.
//
// The runtime hands a fetched body over in chunks of about 4 KiB, and each
// chunk through a stream written in JS costs more than masking it; so the
// body is read in pieces of READ_AT_LEAST or more where the runtime can
// (readAtLeast), and handed on as such.
export function maskBody(body, secrets, limit = Infinity, tooLong = (n) => `longer than ${n} bytes`) {
  if (body === null) return body;
  const m = matcher(secrets);
  if (m === null && limit === Infinity) return body;
  const source = pieces(body);
  let carry = new Uint8Array(0);
  let seen = 0;
  return new ReadableStream({
    async pull(controller) {
      for (;;) {
        const chunk = await source.read();
        if (chunk === null) {
          if (m !== null && carry.length > 0) controller.enqueue(replace(carry, m, true).out);
          controller.close();
          return;
        }
        seen += chunk.length;
        if (seen > limit) {
          await source.cancel();
          controller.error(new Error(tooLong(limit)));
          return;
        }
        if (m === null) {
          controller.enqueue(chunk);
          return;
        }
        const data = carry.length === 0 ? chunk : concat(carry, chunk);
        const { out, rest } = replace(data, m, false);
        carry = data.slice(rest);
        if (out.length > 0) {
          controller.enqueue(out);
          return;
        }
      }
    },
    cancel(reason) {
      return source.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

// The least and the most a piece of a body read with readAtLeast holds.
const READ_AT_LEAST = 32 << 10;
const READ_AT_MOST = 64 << 10;

// pieces reads body as {read, cancel}: read resolves to the next piece
// (a Uint8Array, never empty) or null at the end. A byte stream of the
// runtime (a fetched body) is read with its readAtLeast, into pieces of
// READ_AT_LEAST to READ_AT_MOST bytes; any other stream as it comes.
function pieces(body) {
  let byob = null;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  if (byob !== null && typeof byob.readAtLeast === "function") {
    let ended = false;
    return {
      async read() {
        while (!ended) {
          const { value, done } = await byob.readAtLeast(READ_AT_LEAST, new Uint8Array(READ_AT_MOST));
          ended = done;
          if (value !== undefined && value.length > 0) return value;
        }
        return null;
      },
      cancel: (reason) => byob.cancel(reason),
    };
  }
  byob?.releaseLock();
  const reader = body.getReader();
  return {
    async read() {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return null;
        if (value.length > 0) return value;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

// maskBytes returns bytes with every secret's UTF-8 bytes replaced by
// MASK: a body read whole.
export function maskBytes(bytes, secrets) {
  const m = matcher(secrets);
  return m === null ? bytes : replace(bytes, m, true).out;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// The automata built lately, by their secrets; the oldest goes first.
const built = new Map();
const MAX_BUILT = 32;

// matcher returns the automaton for secrets (null if there are none).
export function matcher(secrets) {
  const needles = sortedSecrets(secrets);
  if (needles.length === 0) return null;
  const key = JSON.stringify(needles);
  let m = built.get(key);
  if (m === undefined) {
    m = build(needles.map((s) => encoder.encode(s)));
    if (built.size >= MAX_BUILT) built.delete(built.keys().next().value);
  } else {
    built.delete(key);
  }
  built.set(key, m);
  return m;
}

// build makes the automaton of needles (distinct, not empty):
//   cls    byte -> its class (bytes in no needle share class 0);
//   delta  (state * k + class) -> next state * k, for k classes: a state is
//          kept multiplied by k, so a step is delta[s + cls[byte]];
//   hitFrom states from hitFrom / k on end a needle (theirs or, through
//          their failure links, a shorter one's): a step compares once;
//   depth  state -> its length: the bytes read that may begin a needle;
//   ends   state -> the length of the needle it spells, or 0;
//   next   state -> the nearest state on its failure chain that spells a
//          needle, or 0.
function build(needles) {
  const cls = new Int32Array(256);
  let k = 1;
  for (const n of needles) for (const b of n) if (cls[b] === 0) cls[b] = k++;
  let size = 1;
  for (const n of needles) size += n.length;
  // The trie, states numbered as made (root 0), -1 where no edge.
  const go = new Int32Array(size * k).fill(-1);
  const depth0 = new Int32Array(size);
  const ends0 = new Int32Array(size);
  let states = 1;
  for (const n of needles) {
    let s = 0;
    for (const b of n) {
      const at = s * k + cls[b];
      if (go[at] === -1) {
        depth0[states] = depth0[s] + 1;
        go[at] = states++;
      }
      s = go[at];
    }
    ends0[s] = n.length;
  }
  // Failure links breadth first; missing edges become the failure's edge.
  const fail = new Int32Array(states);
  const next0 = new Int32Array(states);
  const order = new Int32Array(states);
  let head = 0;
  let tail = 0;
  for (let c = 0; c < k; c++) {
    const t = go[c];
    if (t === -1) go[c] = 0;
    else order[tail++] = t;
  }
  while (head < tail) {
    const s = order[head++];
    for (let c = 0; c < k; c++) {
      const t = go[s * k + c];
      const f = go[fail[s] * k + c];
      if (t === -1) {
        go[s * k + c] = f;
        continue;
      }
      fail[t] = f;
      next0[t] = ends0[f] > 0 ? f : next0[f];
      order[tail++] = t;
    }
  }
  // Renumber: the states that end a needle last, so that one comparison
  // finds them; the root stays 0.
  const id = new Int32Array(states);
  let n = 0;
  for (let s = 0; s < states; s++) if (ends0[s] === 0 && next0[s] === 0) id[s] = n++;
  const hitFrom = n;
  for (let s = 0; s < states; s++) if (ends0[s] !== 0 || next0[s] !== 0) id[s] = n++;
  const delta = new Int32Array(states * k);
  const depth = new Int32Array(states);
  const ends = new Int32Array(states);
  const next = new Int32Array(states);
  for (let s = 0; s < states; s++) {
    const to = id[s];
    for (let c = 0; c < k; c++) delta[to * k + c] = id[go[s * k + c]] * k;
    depth[to] = depth0[s];
    ends[to] = ends0[s];
    next[to] = next0[s] === 0 ? 0 : id[next0[s]];
  }
  const longest = Math.max(...needles.map((b) => b.length));
  return { cls, delta, k, hitFrom: hitFrom * k, depth, ends, next, longest, anchors: anchorsOf(needles) };
}

// replace masks the matches of m in data. With last false, data is not the
// end of the answer: the bytes that may begin a needle continued in the
// next chunk are not done, and rest says where they start. It returns the
// bytes done (a view of data when nothing is masked) and rest.
function replace(data, m, last) {
  const n = data.length;
  let found = m.anchors === null ? FALLBACK : anchored(data, m);
  if (found === FALLBACK) found = scan(data, m);
  // Matches that start before end are whole here; the rest waits.
  const end = last ? n : n - tailDepth(data, m);
  if (found.length === 0) return { out: data.subarray(0, end), rest: end };
  const matches = [];
  for (let j = 0; j < found.length; j += 2) if (found[j] < end) matches.push([found[j], found[j + 1]]);
  matches.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const parts = [];
  let from = 0;
  for (const [start, length] of matches) {
    if (start < from) continue;
    parts.push(data.subarray(from, start), MASK_BYTES);
    from = start + length;
  }
  const stop = Math.max(from, end);
  parts.push(data.subarray(from, stop));
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return { out, rest: stop };
}

// scan runs the automaton over data and returns every match, as
// [start, length, ...] in the order their ends come.
function scan(data, m) {
  const { cls, delta, k, hitFrom, ends, next } = m;
  const found = [];
  let s = 0;
  for (let i = 0; i < data.length; i++) {
    s = delta[s + cls[data[i]]];
    if (s < hitFrom) continue;
    for (let t = (s / k) | 0; t !== 0; t = next[t]) {
      if (ends[t] !== 0) found.push(i + 1 - ends[t], ends[t]);
    }
  }
  return found;
}

// tailDepth is how many of data's last bytes may begin a needle that goes
// on past them: the automaton's depth after reading data, which the last
// (longest needle) bytes decide.
function tailDepth(data, m) {
  const { cls, delta, k, depth, longest } = m;
  let s = 0;
  for (let i = Math.max(0, data.length - longest); i < data.length; i++) s = delta[s + cls[data[i]]];
  return depth[(s / k) | 0];
}

// FALLBACK is what anchored returns when data holds too many of the
// needles' anchor bytes for looking at each to pay: scan reads it instead.
const FALLBACK = null;

// anchored finds every match by its needle's anchor, a byte chosen as
// rare in answers (anchors): the runtime's own search (indexOf) finds each
// anchor byte in data, and each needle with that anchor is compared where
// it would stand. Answers seldom hold the anchors, and then this reads
// data at the speed of indexOf, many times the automaton's byte by byte.
// Data full of anchors (chosen so by the guest, say) makes it give up at
// one in 64 bytes and leave the work to scan: at worst a fraction more
// than scan alone, never more than linear.
function anchored(data, m) {
  const n = data.length;
  let budget = (n >> 6) + 8;
  const found = [];
  for (const { byte, needles } of m.anchors) {
    for (let p = data.indexOf(byte); p !== -1; p = data.indexOf(byte, p + 1)) {
      if (--budget < 0) return FALLBACK;
      for (const { bytes, at } of needles) {
        const start = p - at;
        if (start >= 0 && start + bytes.length <= n && equalAt(data, start, bytes)) found.push(start, bytes.length);
      }
    }
  }
  return found;
}

function equalAt(data, start, bytes) {
  for (let j = 0; j < bytes.length; j++) {
    if (data[start + j] !== bytes[j]) return false;
  }
  return true;
}

// How common each byte is in answers (text, JSON, HTML), most common
// first; a byte not listed is rarer than all. A needle's anchor is its
// rarest byte by this order.
const COMMON = " etaoinsrhldcumfpgwybvkxjqz\"0123456789,:.{}[]\n\r\t<>/=-_'ETAOINSRHLDCUMFPGWYBVKXJQZ;()&?#%!+*@$|~^`\\";
const commonness = new Int32Array(256);
for (let i = 0; i < COMMON.length; i++) commonness[COMMON.charCodeAt(i)] = COMMON.length - i;

// At most this many anchor bytes: each costs a search of the whole answer.
const MAX_ANCHORS = 4;

// anchorsOf chooses each needle's anchor: its rarest byte, the one another
// needle already has where as rare. null: too many anchors to pay.
function anchorsOf(needles) {
  const byByte = new Map();
  for (const bytes of needles) {
    let at = 0;
    for (let j = 1; j < bytes.length; j++) {
      const [a, b] = [commonness[bytes[j]], commonness[bytes[at]]];
      if (a < b || (a === b && byByte.has(bytes[j]) && !byByte.has(bytes[at]))) at = j;
    }
    const byte = bytes[at];
    if (!byByte.has(byte)) byByte.set(byte, []);
    byByte.get(byte).push({ bytes, at });
  }
  if (byByte.size > MAX_ANCHORS) return null;
  return [...byByte].map(([byte, list]) => ({ byte, needles: list }));
}
