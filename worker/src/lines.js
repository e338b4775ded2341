// Splits the wrapper's byte stream into lines in linear time: each byte is
// scanned for "\n" once, a partial line is kept as a list of chunks and
// joined once when its end arrives, and a line longer than the cap is
// refused as soon as it passes the cap, before anything parses it. Kept
// apart from index.js so node tests can load it.

const NEWLINE = 0x0a;
const decoder = new TextDecoder();

// LineTooLong is what push returns once the current line passed the cap.
export const LineTooLong = Symbol("line too long");

export class LineSplitter {
  constructor(cap) {
    this.cap = cap;
    this.parts = []; // chunks of the current, unfinished line
    this.size = 0; // their total length in bytes
  }

  // push takes the next chunk of bytes and returns the lines it completed
  // (without their "\n"), or LineTooLong.
  push(chunk) {
    const lines = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.size + (end - start) > this.cap) return LineTooLong;
      if (nl < 0) break;
      lines.push(this.finish(chunk.subarray(start, nl)));
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.parts.push(chunk.subarray(start));
      this.size += chunk.length - start;
    }
    return lines;
  }

  finish(tail) {
    if (this.parts.length === 0) return decoder.decode(tail);
    this.parts.push(tail);
    const bytes = new Uint8Array(this.size + tail.length);
    let offset = 0;
    for (const part of this.parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    this.parts = [];
    this.size = 0;
    return decoder.decode(bytes);
  }
}
