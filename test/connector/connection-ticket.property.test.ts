import { once } from "node:events";
import { type ClientHttp2Session, connect, createServer, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { Socket } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConnectorPools } from "../../src/connector/connector-pools.js";
import { connectionTicketHeader } from "../../src/connector/protocol.js";
import type { ConnectorSession } from "../../src/pipeline/connectors.js";
import { propertySettings } from "../helpers/property.js";

/**
 * The one-time tickets that admit a tunnel's own connection from a connector (connector-pools.ts). A
 * ticket is a credential sent on the authenticated link: the edge must accept a connection for exactly
 * the tickets it issued, each once, only while the tunnel waits for it — never for a string near one
 * (a character changed, cut short, extended, in another case), never after it was used or given up.
 */

let server: Http2Server;
let session: ClientHttp2Session;

beforeAll(async () => {
  server = createServer();
  server.on("stream", (stream) => stream.close());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await once(session, "connect");
});
afterAll(async () => {
  session.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

type Operation =
  | { readonly kind: "open" }
  | { readonly kind: "claim"; readonly pick: number; readonly variant: Variant }
  | { readonly kind: "cancel"; readonly pick: number };
type Variant = "exact" | "changed" | "shorter" | "longer" | "case" | "padded";

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.constant({ kind: "open" as const }),
  fc.record({
    kind: fc.constant("claim" as const),
    pick: fc.nat(),
    variant: fc.constantFrom<Variant>("exact", "exact", "changed", "shorter", "longer", "case", "padded"),
  }),
  fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }),
);

/** `ticket` turned into a near miss of the given kind (always a different string). */
function nearMiss(ticket: string, variant: Exclude<Variant, "exact">, at: number): string {
  const index = at % ticket.length;
  switch (variant) {
    case "changed": {
      const replaced = ticket[index] === "A" ? "B" : "A";
      return `${ticket.slice(0, index)}${replaced}${ticket.slice(index + 1)}`;
    }
    case "shorter":
      return ticket.slice(0, index);
    case "longer":
      return `${ticket}A`;
    case "case": {
      const swapped = ticket.replace(/[a-z]/, (letter) => letter.toUpperCase());
      return swapped === ticket ? ticket.replace(/[A-Z]/, (letter) => letter.toLowerCase()) : swapped;
    }
    case "padded":
      return ` ${ticket}`;
  }
}

describe("connection tickets", () => {
  it("admit exactly the tickets issued, each once, only while awaited", () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 24 }), fc.nat(), (operations, salt) => {
        const pools = createConnectorPools();
        const connector: ConnectorSession = { pool: "dc1", keyId: "k", publicKey: "p", session, active: 0 };
        pools.add(connector);
        const issued: { ticket: string; state: "waiting" | "used" | "cancelled"; cancel: () => void }[] = [];
        for (const step of operations) {
          if (step.kind === "open") {
            const { stream, connection } = pools.open(
              "dc1",
              { ":method": "CONNECT", ":authority": "127.0.0.1:1" },
              { ownConnection: true },
            );
            const ticket = stream.sentHeaders[connectionTicketHeader];
            stream.close();
            expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
            expect(issued.map((entry) => entry.ticket)).not.toContain(ticket);
            issued.push({ ticket: String(ticket), state: "waiting", cancel: connection!.cancel });
            continue;
          }
          if (issued.length === 0) continue;
          const entry = issued[step.pick % issued.length]!;
          if (step.kind === "cancel") {
            entry.cancel();
            if (entry.state === "waiting") entry.state = "cancelled";
            continue;
          }
          const presented =
            step.variant === "exact" ? entry.ticket : nearMiss(entry.ticket, step.variant, step.pick + salt);
          const waitingExactly = issued.some(
            (candidate) => candidate.state === "waiting" && candidate.ticket === presented,
          );
          const deliver = pools.claimConnection(presented);
          expect(deliver !== undefined).toBe(waitingExactly);
          if (deliver !== undefined) {
            deliver(new Socket());
            entry.state = "used";
          }
        }
        pools.remove(connector);
      }),
      propertySettings(300),
    );
  });

  it("twin: every ticket of a session that ended is refused", () => {
    const pools = createConnectorPools();
    const connector: ConnectorSession = { pool: "dc1", keyId: "k", publicKey: "p", session, active: 0 };
    pools.add(connector);
    const { stream } = pools.open(
      "dc1",
      { ":method": "CONNECT", ":authority": "127.0.0.1:1" },
      { ownConnection: true },
    );
    const ticket = String(stream.sentHeaders[connectionTicketHeader]);
    stream.close();
    pools.remove(connector);
    expect(pools.claimConnection(ticket)).toBeUndefined();
  });
});
