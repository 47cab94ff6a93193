import { channel } from "node:diagnostics_channel";
import { TollgateError } from "../errors/index.js";
import { type ConnectorPools, type ConnectorSession, connectorCountChannel } from "../pipeline/connectors.js";

/** The registry of connected connectors (see {@link ConnectorPools}); one per gateway. */
export function createConnectorPools(): ConnectorPools {
  const pools = new Map<string, Set<ConnectorSession>>();
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
    },
    counts() {
      const counts: Record<string, number> = {};
      for (const name of configured.keys()) counts[name] = pools.get(name)?.size ?? 0;
      return counts;
    },
    open(pool, headers) {
      let best: ConnectorSession | undefined;
      for (const candidate of pools.get(pool) ?? []) {
        if (candidate.session.closed || candidate.session.destroyed) continue;
        if (best === undefined || candidate.active < best.active) best = candidate;
      }
      if (best === undefined) {
        throw new TollgateError("TG_CONNECTOR_UNAVAILABLE", `no connector of pool ${pool} is connected`);
      }
      const connector = best;
      const stream = connector.session.request(headers, { endStream: false });
      connector.active += 1;
      stream.once("close", () => {
        connector.active -= 1;
      });
      return { stream, connector };
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
}
