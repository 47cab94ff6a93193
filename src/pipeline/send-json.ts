import type { OutgoingHttpHeaders, ServerResponse } from "node:http";

/**
 * Answers with a JSON body: every answer tollgate writes itself (errors, broker tokens, `/healthz`,
 * `/readyz`) goes through here, so content type and length are set one way. `headers` adds to them
 * (`x-request-id`, `cache-control`, `www-authenticate` …).
 *
 * @example
 * sendJson(res, 200, { token, expires_at }, { "cache-control": "no-store", "x-request-id": requestId });
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}
