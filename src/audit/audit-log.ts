import pino from "pino";
import { type Clock, systemClock } from "../lib/clock.js";
import { publishAuditEvent } from "./diagnostics.js";
import type { AuditEvent, AuditLog, Redactor } from "./types.js";

/** Options of {@link createAuditLog}. */
export interface AuditLogOptions {
  /** `stdout`, `stderr`, or a file path (appended to; parent folders are created). */
  sink: "stdout" | "stderr" | (string & {});
  /** Every line passes through it before it is written. */
  redactor: Redactor;
  clock?: Clock;
  /**
   * Told when the sink fails (a file that cannot be opened, a full disk, lines dropped because the sink
   * fell too far behind). Default: one line on stderr. Never told the line itself.
   */
  onError?: (error: Error) => void;
}

/** Lines are written in batches of at least this many bytes... */
const batchBytes = 4096;
/** ...or at least this often, so a quiet gateway's events still reach the sink promptly. */
const batchIntervalMs = 1000;
/** Beyond this much unwritten data (a stalled disk), new lines are dropped and reported, not buffered. */
const maxBufferedBytes = 16 * 1024 * 1024;

/**
 * Creates the audit log: one JSON line per event, `time` (ISO 8601) first and then the event's fields as
 * the {@link AuditEvent} type names them. Each line passes through the redactor before it is written.
 *
 * Writing is asynchronous through `pino.destination` (a sonic-boom writer) in batches, so `emit` never waits
 * for I/O; `flush()` writes out what is batched and resolves when it is on its way to the sink (call it on
 * shutdown; a crash can lose at most the last second or 4 KiB of lines). `emit` never throws: an audit
 * problem must not fail the request it describes.
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
  const destination = pino.destination({
    ...(options.sink === "stdout"
      ? { fd: 1 }
      : options.sink === "stderr"
        ? { fd: 2 }
        : { dest: options.sink }),
    sync: false,
    minLength: batchBytes,
    periodicFlush: batchIntervalMs,
    maxLength: maxBufferedBytes,
    mkdir: true,
    append: true,
    // Audit lines carry identities and addresses: readable by the owner and group only.
    mode: 0o640,
  });
  destination.on("error", (error: Error) => onError(error));
  destination.on("drop", () => onError(new Error("audit sink is behind; audit lines were dropped")));

  return {
    emit(event) {
      publishAuditEvent(event);
      try {
        const line = JSON.stringify({ time: new Date(clock()).toISOString(), ...event });
        destination.write(`${redactor.redact(line)}\n`);
      } catch (error) {
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    },
    flush() {
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
