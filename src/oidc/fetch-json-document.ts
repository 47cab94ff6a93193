import { TollgateError } from "../errors/index.js";

/** How to fetch a discovery or JWKS document. */
export interface DocumentFetchOptions {
  readonly fetch: typeof fetch;
  /** Whole exchange, headers and body, in milliseconds. */
  readonly timeoutMs: number;
  /** Largest body accepted; the download is aborted as soon as it is exceeded. */
  readonly maxBytes: number;
  /** Aborts the fetch from outside (the verifier closing). */
  readonly signal?: AbortSignal;
}

/**
 * GETs a JSON object with a size cap enforced while the body streams, a timeout over the whole exchange,
 * and no redirects (a redirect could lead to plain http or to another host). Every failure is a
 * `TG_ISSUER_UNAVAILABLE` whose message names the URL and the reason, never the body.
 *
 * @example
 * const doc = await fetchJsonDocument("https://issuer/.well-known/jwks", { fetch, timeoutMs: 5000, maxBytes: 524288 });
 */
export async function fetchJsonDocument(
  url: string,
  options: DocumentFetchOptions,
): Promise<Record<string, unknown>> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  timer.unref?.();
  const abortFromOutside = () => controller.abort();
  options.signal?.addEventListener("abort", abortFromOutside, { once: true });
  if (options.signal?.aborted) controller.abort();
  const fail = (reason: string, cause?: unknown) =>
    new TollgateError("TG_ISSUER_UNAVAILABLE", `GET ${url}: ${reason}`, { cause });
  try {
    let response: Response;
    try {
      response = await options.fetch(url, {
        method: "GET",
        redirect: "manual",
        signal: controller.signal,
        headers: { accept: "application/json" },
      });
    } catch (cause) {
      throw fail(timedOut ? `timed out after ${options.timeoutMs}ms` : "request failed", cause);
    }
    if (response.status !== 200) {
      await discard(response);
      const redirect = response.status >= 300 && response.status < 400 ? " (redirects are not followed)" : "";
      throw fail(`answered HTTP ${response.status}${redirect}`);
    }
    const declared = Number(response.headers.get("content-length") ?? Number.NaN);
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      await discard(response);
      throw fail(`document of ${declared} bytes exceeds the ${options.maxBytes}-byte limit`);
    }
    const bytes = await readCapped(response, options.maxBytes, controller).catch((cause: unknown) => {
      if (cause instanceof DocumentTooLarge)
        throw fail(`document exceeds the ${options.maxBytes}-byte limit`);
      throw fail(timedOut ? `timed out after ${options.timeoutMs}ms` : "reading the body failed", cause);
    });
    let document: unknown;
    try {
      document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (cause) {
      throw fail("document is not JSON", cause);
    }
    if (typeof document !== "object" || document === null || Array.isArray(document)) {
      throw fail("document is not a JSON object");
    }
    return document as Record<string, unknown>;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", abortFromOutside);
  }
}

class DocumentTooLarge extends Error {}

async function readCapped(
  response: Response,
  maxBytes: number,
  controller: AbortController,
): Promise<Uint8Array> {
  const body = response.body;
  if (body === null) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      // Stop the download now rather than after the peer has sent everything it wants to.
      controller.abort();
      await reader.cancel().catch(() => undefined);
      throw new DocumentTooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}
