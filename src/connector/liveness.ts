import type { Http2Session } from "node:http2";

/** How often each end of a link pings the other, and how long it waits for the answer. */
export interface LinkPing {
  readonly everyMs: number;
  readonly timeoutMs: number;
}

/** A link's pings as both ends run them: a dead link is noticed within 25 s. */
export const defaultLinkPing: LinkPing = { everyMs: 15_000, timeoutMs: 10_000 };

/**
 * HTTP/2 PINGs on a link, from either end: a peer that vanished without closing (power cut, a NAT that
 * forgot the connection) and a session that stopped working without saying so are noticed within
 * `everyMs + timeoutMs`, and `onDead` ends the link. The second happens on Node 20: a session that
 * nghttp2's rapid-reset defence terminated is neither closed nor destroyed, and its socket never reads
 * the peer's close (Node 24 closes it).
 */
export function watchLiveness(session: Http2Session, ping: LinkPing, onDead: () => void): void {
  const timer = setInterval(() => {
    const deadline = setTimeout(onDead, ping.timeoutMs);
    let sent = false;
    try {
      sent = session.ping((error) => {
        clearTimeout(deadline);
        if (error !== null) onDead();
      });
    } catch {
      // A session already destroyed throws: it is dead.
    }
    if (!sent) {
      clearTimeout(deadline);
      onDead();
    }
  }, ping.everyMs);
  timer.unref();
  session.once("close", () => clearInterval(timer));
}
