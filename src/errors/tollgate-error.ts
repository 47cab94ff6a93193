import { type ErrorCode, errorCatalogue } from "./catalogue.js";

/**
 * The one error class of tollgate. `message` is the operator-facing detail (goes to the audit log, after
 * redaction); what the HTTP caller sees is decided by `toErrorResponse` (error-response.ts) from the
 * catalogue entry.
 * Foreign errors (jose, undici) are wrapped at the boundary and kept as `cause`.
 *
 * @example
 * throw new TollgateError("TG_TOKEN_EXPIRED", "token expired 42s ago", { cause: joseError });
 */
export class TollgateError extends Error {
  override readonly name = "TollgateError";
  readonly code: ErrorCode;
  /** Extra response headers (for example `Retry-After`), set by the thrower. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.headers = options.headers ?? {};
  }

  /** HTTP status from the catalogue. */
  get status(): number {
    return errorCatalogue[this.code].status;
  }
}

/** True for a {@link TollgateError} (an `instanceof` check: errors from another copy of this module are not). */
export function isTollgateError(error: unknown): error is TollgateError {
  return error instanceof TollgateError;
}
