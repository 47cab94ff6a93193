import { randomBytes } from "node:crypto";
import { channel } from "node:diagnostics_channel";
import { type OutgoingHttpHeaders, sensitiveHeaders } from "node:http2";
import type { Socket } from "node:net";
import { TollgateError } from "../errors/index.js";
import {
  type AwaitedConnection,
  type ConnectorPools,
  type ConnectorSession,
  connectionTicketHeader,
  connectorCountChannel,
} from "../pipeline/connectors.js";

/** The registry of connected connectors (see {@link ConnectorPools}); one per gateway. */
export function createConnectorPools(): ConnectorPools {
  const pools = new Map<string, Set<ConnectorSession>>();
  // Tunnels awaiting a connection of their own, by ticket; and the connections each session opened, so
  // a session that ends (a dropped connector, a key a reload removed) takes its tunnels with it.
  const awaited = new Map<string, { deliver: (socket: Socket) => void }>();
  const connections = new Map<ConnectorSession, Set<Socket>>();
  const endsOf = new Map<ConnectorSession, Set<() => void>>();
  let configured: ReadonlyMap<string, ReadonlySet<string>> = new Map();
  // Metrics count connectors from this channel (metrics/ never imports the request path).
  const counts = channel(connectorCountChannel);
  const publish = (pool: string) => {
    if (counts.hasSubscribers) counts.publish({ pool, connected: pools.get(pool)?.size ?? 0 });
  };

  return {
    add(connector) {
      let members = pools.get(connector.pool);
      if (members === undefined) {
        members = new Set();
        pools.set(connector.pool, members);
      }
      members.add(connector);
      publish(connector.pool);
    },
    remove(connector) {
      if (pools.get(connector.pool)?.delete(connector) === true) publish(connector.pool);
      for (const end of endsOf.get(connector) ?? []) end();
      for (const socket of connections.get(connector) ?? []) socket.destroy();
      endsOf.delete(connector);
      connections.delete(connector);
    },
    counts() {
      const counts: Record<string, number> = {};
      for (const name of configured.keys()) counts[name] = pools.get(name)?.size ?? 0;
      return counts;
    },
    open(pool, headers, options) {
      let best: ConnectorSession | undefined;
      for (const candidate of pools.get(pool) ?? []) {
        if (candidate.session.closed || candidate.session.destroyed) continue;
        if (best === undefined || candidate.active < best.active) best = candidate;
      }
      if (best === undefined) {
        throw new TollgateError("TG_CONNECTOR_UNAVAILABLE", `no connector of pool ${pool} is connected`);
      }
      const connector = best;
      if (options?.ownConnection !== true) {
        return { stream: request(connector, headers), connector };
      }
      const ticket = randomBytes(32).toString("base64url");
      const connection = awaitConnection(connector, ticket);
      // The ticket is a credential: never into HPACK's dynamic table, sent as a literal each time.
      const stream = request(connector, {
        ...headers,
        [connectionTicketHeader]: ticket,
        [sensitiveHeaders]: [connectionTicketHeader],
      });
      return { stream, connector, connection };
    },
    claimConnection(ticket) {
      const waiting = awaited.get(ticket);
      if (waiting === undefined) return undefined;
      awaited.delete(ticket);
      return waiting.deliver;
    },
    retain(allowed, keepToken) {
      configured = allowed;
      for (const [pool, members] of pools) {
        const keys = allowed.get(pool);
        for (const member of members) {
          const kept =
            member.token === undefined
              ? keys?.has(member.publicKey) === true
              : keys !== undefined && keepToken?.(member) === true;
          if (kept) continue;
          members.delete(member);
          member.session.close();
        }
        publish(pool);
      }
      for (const pool of allowed.keys()) publish(pool);
    },
    members() {
      return [...pools.values()].flatMap((members) => [...members]);
    },
    close() {
      for (const members of pools.values()) for (const member of members) member.session.destroy();
      pools.clear();
    },
  };

  /** A stream on `connector`'s link, holding one of its slots until it closes. */
  function request(connector: ConnectorSession, headers: OutgoingHttpHeaders) {
    const stream = connector.session.request(headers, { endStream: false });
    connector.active += 1;
    stream.once("close", () => {
      connector.active -= 1;
    });
    return stream;
  }

  /**
   * Registers `ticket` for a connection from `connector`. The connection, once delivered, belongs to the
   * session (closed with it) and holds a slot of it until it closes.
   */
  function awaitConnection(connector: ConnectorSession, ticket: string): AwaitedConnection {
    let arrived: Socket | undefined;
    let ended = false;
    const ends = endsOf.get(connector) ?? new Set<() => void>();
    endsOf.set(connector, ends);
    const end = () => {
      if (ended) return;
      ended = true;
      awaited.delete(ticket);
      ends.delete(end);
      arrived?.destroy();
    };
    ends.add(end);
    awaited.set(ticket, {
      deliver(socket) {
        if (ended || !pools.get(connector.pool)?.has(connector)) return void socket.destroy();
        arrived = socket;
        let held = connections.get(connector);
        if (held === undefined) {
          held = new Set();
          connections.set(connector, held);
        }
        held.add(socket);
        connector.active += 1;
        socket.once("close", () => {
          connector.active -= 1;
          connections.get(connector)?.delete(socket);
        });
      },
    });
    return {
      take() {
        const socket = arrived;
        // Taken: the tunnel owns it now (and the session, which closes it when it ends).
        ended = true;
        awaited.delete(ticket);
        ends.delete(end);
        return socket;
      },
      cancel: end,
    };
  }
}
