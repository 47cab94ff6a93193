import type { ServerResponse } from "node:http";

/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1) asks the server whether to send the body. Node answers 100 by
 * itself, before any handler runs, unless the server listens for `checkContinue`; the gateway listens,
 * so that the invitation goes only to requests it admits. A refused one gets its final status without a
 * 100, with `Connection: close`: the client may or may not send the body it held back, and neither must
 * be read as the next request on the connection.
 *
 * @example
 * server.on("checkContinue", (req, res) => { awaitContinue(res); onRequest(req, res); });
 * // …token verified, policy allowed:
 * admitBody(res);
 */
const awaiting = new WeakSet<ServerResponse>();

/** Marks a response whose client waits for 100 Continue before it sends the body. */
export function awaitContinue(res: ServerResponse): void {
  awaiting.add(res);
}

/** The request is admitted: invite its body now, if its client is waiting for the invitation. */
export function admitBody(res: ServerResponse): void {
  if (awaiting.delete(res)) res.writeContinue();
}

/** Whether the client still holds its body back: a final answer now must close the connection. */
export function isAwaitingContinue(res: ServerResponse): boolean {
  return awaiting.has(res);
}
