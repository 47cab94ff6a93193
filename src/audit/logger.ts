import pino from "pino";
import type { Redactor } from "./types.js";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Every line passes through it before it is written. */
  redactor: Redactor;
  /** pino level name; default `info`. */
  level?: string;
  /** Default `stderr`. Tests pass a stream to read the lines back. */
  destination?: "stderr" | NodeJS.WritableStream;
}

/**
 * Credential headers blanked by key wherever a request or its headers are logged. The redactor catches
 * their values anyway; this keeps even unregistered, non-JWT credentials (a Basic password) out.
 */
const credentialPaths = [
  "headers.authorization",
  'headers["gateway-authorization"]',
  'headers["proxy-authorization"]',
  "headers.cookie",
  "req.headers.authorization",
  'req.headers["gateway-authorization"]',
  'req.headers["proxy-authorization"]',
  "req.headers.cookie",
];

/**
 * Creates the operational logger (pino, JSON lines on stderr by default): start-up, reloads, issuer key
 * problems, unexpected errors. Every line passes through the redactor before it is written, through
 * pino's `hooks.streamWrite`, so no code path can log around it.
 *
 * stderr is written synchronously: these lines are few, and the last ones before a crash matter most.
 *
 * @example
 * const logger = createLogger({ redactor, level: process.env.LOG_LEVEL });
 * logger.info({ port }, "tollgate listening");
 */
export function createLogger(options: LoggerOptions): pino.Logger {
  const { redactor } = options;
  const destination =
    options.destination === undefined || options.destination === "stderr"
      ? pino.destination({ dest: 2, sync: true })
      : options.destination;
  return pino(
    {
      level: options.level ?? "info",
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: credentialPaths, censor: "[REDACTED]" },
      hooks: { streamWrite: (line) => redactor.redact(line) },
    },
    destination,
  );
}
