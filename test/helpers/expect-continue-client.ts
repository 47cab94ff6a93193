import { connect } from "node:net";

/** What a client that sent `Expect: 100-continue` saw, with a raw socket (no client library answers 100 for us). */
export interface ExpectOutcome {
  sawContinue: boolean;
  status: number;
  /** Whether the gateway closed the connection after its final answer. */
  closed: boolean;
}

/**
 * Sends the head with `Expect: 100-continue`, sends the body only on a 100, reads the final status and,
 * for a refusal, waits (bounded) for the gateway to close the connection.
 */
export function sendExpectingContinue(
  port: number,
  requestLine: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<ExpectOutcome> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let sawContinue = false;
    let status: number | undefined;
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      if (status === undefined) reject(new Error(`no final answer (saw 100: ${sawContinue})`));
      else resolve({ sawContinue, status, closed });
    };
    // Bounded: a refusal must close at once; an admitted request's answer comes well within this.
    const timer = setTimeout(finish, 3_000);
    socket.on("error", reject);
    socket.on("end", () => {
      closed = true;
      finish();
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      for (;;) {
        if (status !== undefined) return;
        const headEnd = received.indexOf("\r\n\r\n");
        if (headEnd === -1) return;
        const code = Number(/^HTTP\/1\.1 (\d{3})/.exec(received.subarray(0, 12).toString("latin1"))?.[1]);
        received = received.subarray(headEnd + 4);
        if (code === 100) {
          sawContinue = true;
          socket.write(body);
          continue;
        }
        status = code;
        // An admitted answer is enough as it is; a refusal waits for the close.
        if (code < 400) finish();
        return;
      }
    });
    const head = Object.entries({ ...headers, expect: "100-continue", "content-length": String(body.length) })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
    socket.write(`${requestLine}\r\nhost: 127.0.0.1:${port}\r\n${head}\r\n`);
  });
}
