import { mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import pino from "pino";
import { type Clock, systemClock } from "../lib/clock.js";
import { createDenialAggregator, type DenialAggregation } from "./denial-aggregator.js";
import { publishAuditEvent } from "./diagnostics.js";
import { createAuditLineEncoder } from "./line-encoder.js";
import { type AuditEvent, type AuditLog, auditDefaults, type Redactor } from "./types.js";

/** Options of {@link createAuditLog}. */
export interface AuditLogOptions {
  /** `stdout`, `stderr`, or a file path (appended to; parent folders are created). */
  sink: "stdout" | "stderr" | (string & {});
  /** Every value of every line passes through it before it is written. */
  redactor: Redactor;
  clock?: Clock;
  /**
   * Longest time a line waits in memory before it is handed to the sink (default 20 ms). Lines are written
   * in batches: when this much time has passed since the oldest unwritten line, or when
   * {@link AuditLogOptions.flushBytes} have gathered, whichever comes first. 0 writes at the end of every
   * event-loop turn.
   */
  flushIntervalMs?: number;
  /** Encoded bytes that trigger a write at once (default 64 KiB). */
  flushBytes?: number;
  /**
   * Repeated denials from one source are written as one counted line per window (see
   * denial-aggregator.ts). Default: 10 s windows, 256 sources; `windowMs: 0` writes every denial.
   */
  denials?: DenialAggregation;
  /**
   * Told when the sink fails (a file that cannot be opened, a full disk, lines dropped because the sink
   * fell too far behind). Default: one line on stderr. Never told the line itself.
   */
  onError?: (error: Error) => void;
}

/** sonic-boom's `write` in `contentMode: "buffer"`. */
interface BufferWriter {
  write(data: Buffer): boolean;
}

/** Beyond this much unwritten data (a stalled disk), new lines are dropped and reported, not buffered. */
const maxBufferedBytes = 16 * 1024 * 1024;

/**
 * Creates the audit log: one JSON line per event, `time` (ISO 8601) first and then the event's fields as
 * the {@link AuditEvent} type names them, `identity` last. Every value passes through the redactor
 * before it is written.
 *
 * Writing is asynchronous through `pino.destination` (a sonic-boom writer), in batches bounded by time
 * ({@link AuditLogOptions.flushIntervalMs}, 20 ms by default) and size, so `emit` never waits for I/O;
 * `flush()` writes out what is pending and resolves when it is on its way to the sink (call it on
 * shutdown; a crash can lose the lines of the last interval and those still queued behind a slow disk).
 * `emit` never throws: an audit problem must not fail the request it describes.
 *
 * The audit log writes to pino's destination directly rather than through a pino logger because the
 * line format is a contract (`time` first; no `level`, `pid`, `msg`), and pino's lines start with its
 * own fields.
 *
 * @example
 * const audit = createAuditLog({ sink: "/var/log/tollgate/audit.jsonl", redactor });
 * audit.emit({ event: "gateway.request", request_id, decision: "allow", reason: "allowed-by-policy" });
 * await audit.flush();
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { redactor } = options;
  const clock = options.clock ?? systemClock;
  const onError = options.onError ?? reportToStderr;
  const fd = openSink(options.sink, onError);
  // No destination at all when the sink could not be opened (reported by openSink): lines are dropped.
  const destination =
    fd === undefined
      ? undefined
      : pino.destination({
          fd,
          sync: false,
          // Buffers, not strings: lines are encoded once, by the line encoder. In its string mode
          // sonic-boom measures every string's UTF-8 length twice, joins strings while a write is in
          // flight, and after each write encodes the written string again to find the unwritten rest: at
          // gateway rates that was more CPU than serialising the lines.
          contentMode: "buffer",
          // One write call per batch, however many lines it has (sonic-boom's default splits at 16 KiB).
          maxWrite: maxBufferedBytes,
          // 1, not 0: sonic-boom's flush() only waits for the data to be written when minLength > 0.
          minLength: 1,
          maxLength: maxBufferedBytes,
        });
  destination?.on("error", (error: Error) => onError(error));
  destination?.on("drop", () => onError(new Error("audit sink is behind; audit lines were dropped")));

  // Lines are encoded straight into memory (see createAuditLineEncoder) and handed to the writer in
  // batches: one write call costs about the same whether it carries one line or a thousand, and at gateway
  // rates a call per event-loop turn (a thread-pool round trip and the wake-up that reports it) cost more
  // than encoding the lines it carried. A batch goes out when the oldest line in it has waited
  // flushIntervalMs (0: at the end of the turn), or as soon as flushBytes have gathered; flush()
  // (shutdown) writes out everything at once.
  const flushIntervalMs = options.flushIntervalMs ?? auditDefaults.flushIntervalMs;
  const flushBytes = options.flushBytes ?? auditDefaults.flushBytes;
  const encoder = createAuditLineEncoder({ redactor });
  let batchTimer: NodeJS.Timeout | undefined;
  let turnEnd: NodeJS.Immediate | undefined;

  const writeBatch = () => {
    if (batchTimer !== undefined) {
      clearTimeout(batchTimer);
      batchTimer = undefined;
    }
    if (turnEnd !== undefined) {
      clearImmediate(turnEnd);
      turnEnd = undefined;
    }
    const bytes = encoder.take();
    if (bytes === undefined) return;
    if (destination === undefined) {
      // The sink never opened (reported then): the lines cannot go anywhere.
      onError(new Error("audit sink is not open; audit lines were dropped"));
      return;
    }
    try {
      // In buffer mode sonic-boom's write takes a Buffer; its type declarations know only the string form.
      (destination as unknown as BufferWriter).write(bytes);
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)));
    }
  };

  const append = (event: AuditEvent, presentedToken?: string): void => {
    try {
      encoder.append(clock(), event, presentedToken);
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (encoder.pendingBytes >= flushBytes) writeBatch();
    else if (flushIntervalMs === 0) turnEnd ??= setImmediate(writeBatch);
    else batchTimer ??= setTimeout(writeBatch, flushIntervalMs);
  };
  const denials = createDenialAggregator(
    options.denials ?? {
      windowMs: auditDefaults.denialWindowMs,
      maxSources: auditDefaults.denialMaxSources,
    },
    (event) => append(event),
  );

  return {
    emit(event, presentedToken) {
      // Published first: metrics count every decision, also those folded into a counted line.
      publishAuditEvent(event);
      if (denials.absorb(event)) return;
      append(event, presentedToken);
    },
    async flush() {
      denials.flush();
      writeBatch();
      if (destination === undefined) return;
      return new Promise<void>((resolve) => {
        try {
          destination.flush((error) => {
            // fsync is not possible on a pipe or terminal (stdout): the data was written, that is enough.
            if (error && !isUnsyncable(error)) onError(error);
            resolve();
          });
        } catch (error) {
          onError(error instanceof Error ? error : new Error(String(error)));
          resolve();
        }
      });
    },
  };
}

/**
 * Opens the sink at once, synchronously (once, at start-up): `stdout`, `stderr`, or a file appended to,
 * its folder created, readable by owner and group only (audit lines carry identities and addresses).
 * Opening it here rather than letting sonic-boom open it in the background matters at exit: pino flushes
 * the destination synchronously then, and on a destination still opening (a process that stops right
 * after it started) or one that never opened, that flush throws inside the 'exit' handler and ends the
 * process with a crash report, losing the lines. Returns `undefined`, after telling `onError`, when the
 * file cannot be opened.
 */
function openSink(sink: string, onError: (error: Error) => void): number | undefined {
  if (sink === "stdout") return 1;
  if (sink === "stderr") return 2;
  try {
    mkdirSync(dirname(sink), { recursive: true });
    return openSync(sink, "a", 0o640);
  } catch (error) {
    onError(error instanceof Error ? error : new Error(String(error)));
    return undefined;
  }
}

function isUnsyncable(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EINVAL" || code === "ENOTSUP" || code === "EBADF";
}

let reportedOnce = false;

function reportToStderr(error: Error): void {
  if (reportedOnce) return;
  reportedOnce = true;
  process.stderr.write(`tollgate: audit log sink failed: ${error.message}\n`);
}
