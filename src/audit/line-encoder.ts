import { lineSecretOf } from "./redactor.js";
import type { AuditEvent, LineSecret, Redactor } from "./types.js";

/** Writes audit events as JSON lines, UTF-8, straight into memory that is then handed to the sink. */
export interface AuditLineEncoder {
  /**
   * Appends one line: `{"time":"<ISO 8601>"`, then the event's members in their order, `identity` last.
   * Throws (and appends nothing) when a member cannot be serialised, as `JSON.stringify` would.
   * `presentedToken`, the token the request presented, is a secret for this line in every form (see
   * {@link lineSecretOf}); it is never written.
   */
  append(timeMs: number, event: AuditEvent, presentedToken?: string): void;
  /** Bytes appended since the last {@link AuditLineEncoder.take}. */
  readonly pendingBytes: number;
  /**
   * The bytes appended since the last take, or `undefined` when there are none. The encoder never writes
   * into them again, so they can be handed to an asynchronous writer as they are.
   */
  take(): Buffer | undefined;
}

/** Options of {@link createAuditLineEncoder}. */
export interface AuditLineEncoderOptions {
  /** Every value, and every serialised object, is redacted before it is written. */
  redactor: Redactor;
  /** Size of each block of memory lines are written into (default 128 KiB; longer lines get their own). */
  blockBytes?: number;
}

/** The members of one written line: name, value, and where `,"name":value` was written. */
interface LineLayout {
  names: string[];
  values: unknown[];
  blocks: Buffer[];
  starts: number[];
  ends: number[];
  count: number;
}

const quote = 0x22;
// Characters JSON lets a string carry as they are, ASCII only: no control characters, `"` or `\`. Values
// outside it (rare: paths and hosts are visible ASCII by the time they get here) take JSON.stringify.
const plainJsonText = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const lineEnd = Buffer.from("}\n");

/**
 * Longest text value a line keeps, in characters; longer ones (a path a client padded) are cut, with `…`.
 * Cut after redaction, so that a secret running past the cut is still found and replaced whole.
 */
export const maxAuditValueChars = 2048;

/**
 * Creates the audit log's line encoder. Each value is redacted on its own and written as bytes into a
 * block of memory that the sink receives as it is: no line string, no join, no second copy (what a
 * whole-event `JSON.stringify` cost is in bench/README.md).
 *
 * Most of a line repeats the line before it (event, decision, route, token hash, policy, upstream,
 * status, the caller's identity: the same for every request of one caller on one route). So the encoder
 * remembers where each member of the previous line was written, and every run of members whose names and
 * values are the same as there (`===`) is copied from it in one move, neither serialised nor redacted
 * again. Only what changed (the time, the request id, a duration) is encoded. Identity objects are
 * encoded once per object: the gateway hands the same object for every request with the same verified
 * claims. Both rest on one rule: a value, once emitted, never changes (`identityFromClaims` freezes what
 * it makes; every other object value is built fresh for its event).
 *
 * Redacting values one by one finds what redacting the whole line found: a secret cannot span two values
 * with JSON punctuation between them, and each value is redacted before it is JSON-escaped, so its raw
 * form is the one matched. Everything encoded under one set of registered secrets is forgotten as soon
 * as the redactor's generation changes.
 *
 * @example
 * const encoder = createAuditLineEncoder({ redactor });
 * encoder.append(Date.now(), { event: "gateway.request", request_id: "r-1", decision: "allow", reason: "allowed-by-policy" });
 * sink.write(encoder.take());
 */
export function createAuditLineEncoder(options: AuditLineEncoderOptions): AuditLineEncoder {
  const { redactor } = options;
  const blockBytes = options.blockBytes ?? 128 * 1024;
  let block = Buffer.allocUnsafeSlow(blockBytes);
  /** Where the bytes not yet taken start in `block`. */
  let takeFrom = 0;
  let offset = 0;
  /** Where the line being written starts in `block`. */
  let lineStart = 0;
  /** Earlier blocks' untaken bytes, which belong before the current block's. */
  let filled: Buffer[] = [];
  let filledBytes = 0;

  let generation = redactor.generation;
  let identities = new WeakMap<object, Buffer>();
  const prefixes = new Map<string, Buffer>();
  // Two layouts, swapped after each line: the previous line's (read) and the current one's (written).
  let previous = emptyLayout();
  let current = emptyLayout();

  let lastTimeMs = Number.NaN;
  let timePrefix = Buffer.alloc(0);

  /** Makes room for `bytes` more at `offset`; moves the line begun so far to a new block if needed. */
  const ensure = (bytes: number): void => {
    if (offset + bytes <= block.length) return;
    const begun = block.subarray(lineStart, offset);
    if (lineStart > takeFrom) {
      const done = block.subarray(takeFrom, lineStart);
      filled.push(done);
      filledBytes += done.length;
    }
    const moved = Buffer.allocUnsafeSlow(Math.max(blockBytes, begun.length + bytes));
    moved.set(begun, 0);
    // Members already written in this line move with it.
    for (let i = 0; i < current.count; i++) {
      if (current.blocks[i] !== block) continue;
      current.blocks[i] = moved;
      current.starts[i]! -= lineStart;
      current.ends[i]! -= lineStart;
    }
    block = moved;
    takeFrom = 0;
    lineStart = 0;
    offset = begun.length;
  };

  /** Copies bytes written earlier (in this block or an older one) to `offset`. */
  const copy = (source: Buffer, start: number, end: number): void => {
    ensure(end - start);
    if (source === block) block.copyWithin(offset, start, end);
    else block.set(source.subarray(start, end), offset);
    offset += end - start;
  };

  const prefixOf = (name: string): Buffer => {
    let prefix = prefixes.get(name);
    if (prefix === undefined) {
      prefix = Buffer.from(`,${JSON.stringify(name)}:`);
      prefixes.set(name, prefix);
    }
    return prefix;
  };

  /** Writes `,"name":value` for a value that was not in the previous line. */
  const encodeMember = (name: string, value: unknown): boolean => {
    const prefix = prefixOf(name);
    if (typeof value === "string") {
      const redacted = redactor.redact(value, lineSecretFor(value.length));
      const text =
        redacted.length > maxAuditValueChars ? `${redacted.slice(0, maxAuditValueChars)}…` : redacted;
      // At most: every UTF-16 unit escaped as `\uXXXX`.
      ensure(prefix.length + 2 + 6 * text.length);
      block.set(prefix, offset);
      offset += prefix.length;
      if (plainJsonText.test(text)) {
        block[offset++] = quote;
        offset += block.write(text, offset, "latin1");
        block[offset++] = quote;
      } else {
        offset += block.write(JSON.stringify(text), offset);
      }
      return true;
    }
    if (name === "identity" && typeof value === "object" && value !== null) {
      const bytes = identityBytes(value);
      ensure(bytes.length);
      block.set(bytes, offset);
      offset += bytes.length;
      return true;
    }
    // Numbers, booleans, denial conditions, anything unusual: as JSON.stringify has it, then redacted.
    const serialised = JSON.stringify(value);
    if (serialised === undefined) return false; // functions and symbols are left out, as in JSON.stringify
    const redacted = redactor.redact(serialised, lineSecretFor(serialised.length));
    // A scalar whose text was a secret would otherwise come out as a bare `[REDACTED]`: not JSON.
    const text =
      redacted === serialised || (typeof value !== "number" && typeof value !== "boolean")
        ? redacted
        : JSON.stringify(redacted);
    ensure(prefix.length + 3 * text.length);
    block.set(prefix, offset);
    offset += prefix.length;
    offset += block.write(text, offset);
    return true;
  };

  const identityBytes = (identity: object): Buffer => {
    let bytes = identities.get(identity);
    if (bytes === undefined) {
      bytes = Buffer.from(`,"identity":${redactor.redact(JSON.stringify(identity))}`);
      identities.set(identity, bytes);
    }
    return bytes;
  };

  const timeBytes = (ms: number): Buffer => {
    // Many lines share a millisecond under load; the date is formatted once per millisecond.
    if (ms !== lastTimeMs) {
      lastTimeMs = ms;
      timePrefix = Buffer.from(`{"time":"${new Date(ms).toISOString()}"`);
    }
    return timePrefix;
  };

  // The token of the line being written, and its forms once a value long enough to hold it has asked.
  let presented: string | undefined;
  let presentedSecret: LineSecret | undefined;
  /** The line's secret when a text of `length` could hold one of its forms (none is shorter than it). */
  const lineSecretFor = (length: number): LineSecret | undefined => {
    if (presented === undefined || length < presented.length) return undefined;
    presentedSecret ??= lineSecretOf(presented);
    return presentedSecret;
  };

  // The run of members being carried over from the previous line, not yet copied.
  let runBlock: Buffer | undefined;
  let runStart = 0;
  let runEnd = 0;
  const flushRun = (): void => {
    if (runBlock === undefined) return;
    copy(runBlock, runStart, runEnd);
    runBlock = undefined;
  };

  /** One member of the line: carried over from the previous line when it is the same there, else encoded. */
  const member = (name: string, value: unknown): void => {
    const index = current.count;
    // A value long enough to hold this line's token is encoded again: the line before it redacted it
    // without knowing this token.
    const same =
      index < previous.count &&
      previous.names[index] === name &&
      previous.values[index] === value &&
      (presented === undefined || typeof value !== "string" || value.length < presented.length);
    if (same) {
      const source = previous.blocks[index]!;
      const start = previous.starts[index]!;
      const end = previous.ends[index]!;
      if (runBlock !== source || runEnd !== start) {
        flushRun();
        runBlock = source;
        runStart = start;
      }
      runEnd = end;
      // Where it will be once the run is copied: after what is written so far and the run before it.
      const at = offset + (start - runStart);
      record(index, name, value, block, at, at + (end - start));
      return;
    }
    flushRun();
    // Relative to the line's start: encoding may move the line to a new block.
    const fromLineStart = offset - lineStart;
    if (encodeMember(name, value)) record(index, name, value, block, lineStart + fromLineStart, offset);
  };

  const record = (index: number, name: string, value: unknown, where: Buffer, start: number, end: number) => {
    current.names[index] = name;
    current.values[index] = value;
    current.blocks[index] = where;
    current.starts[index] = start;
    current.ends[index] = end;
    current.count = index + 1;
  };

  return {
    append(timeMs, event, presentedToken) {
      presented = presentedToken;
      presentedSecret = undefined;
      if (redactor.generation !== generation) {
        generation = redactor.generation;
        identities = new WeakMap();
        previous.count = 0;
      }
      const time = timeBytes(timeMs);
      lineStart = offset;
      current.count = 0;
      runBlock = undefined;
      try {
        ensure(time.length);
        block.set(time, offset);
        offset += time.length;
        for (const name in event) {
          const value = event[name as keyof AuditEvent];
          if (value !== undefined && name !== "identity") member(name, value);
        }
        if (event.identity !== undefined) member("identity", event.identity);
        flushRun();
        ensure(lineEnd.length);
        block.set(lineEnd, offset);
        offset += lineEnd.length;
      } catch (error) {
        // Nothing of a line that could not be finished is kept, and the next line starts from scratch.
        offset = lineStart;
        previous.count = 0;
        throw error;
      }
      const written = previous;
      previous = current;
      current = written;
    },
    get pendingBytes() {
      return filledBytes + offset - takeFrom;
    },
    take() {
      if (filledBytes === 0 && offset === takeFrom) return undefined;
      const taken = block.subarray(takeFrom, offset);
      takeFrom = offset;
      if (filled.length === 0) return taken;
      const all = Buffer.concat([...filled, taken], filledBytes + taken.length);
      filled = [];
      filledBytes = 0;
      return all;
    },
  };
}

function emptyLayout(): LineLayout {
  return { names: [], values: [], blocks: [], starts: [], ends: [], count: 0 };
}
