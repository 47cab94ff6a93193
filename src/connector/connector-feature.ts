import type { IncomingMessage } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type { AuditEvent } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import type { ConnectorSession } from "../pipeline/connectors.js";
import type {
  FeatureContext,
  FeatureDependencies,
  FeatureFactory,
  GatewayFeature,
} from "../pipeline/feature.js";
import { decide } from "../policy/index.js";
import { countTunnelBytesFrom } from "../tunnel/index.js";
import { answerConnectError } from "../tunnel/raw-response.js";
import { keyId } from "./connector-keys.js";
import type { CompiledConnectorPool } from "./connector-schema.js";
import { channelBindingOf, checkAnswer, http2Transport, newChallenge } from "./handshake.js";
import { defaultLinkPing, watchLiveness } from "./liveness.js";
import {
  bindingHeader,
  challengeHeader,
  connectionAuthority,
  connectionTicketHeader,
  connectorAuthority,
  connectorPoolHeader,
  helloPath,
  linkConnectionWindowBytes,
  linkStreamWindowBytes,
  sessionKeyHeader,
  signatureHeader,
  tokenHeader,
  welcomePath,
} from "./protocol.js";
import {
  type Admission,
  type ChallengeProof,
  createTokenAdmission,
  type HelloAnswer,
} from "./token-admission.js";

/** What the connector feature reads of the compiled configuration. */
export interface ConnectorFeatureConfig {
  readonly connectors: readonly CompiledConnectorPool[];
}

/** How long a connector has, from its CONNECT, to prove its key. */
const helloTimeoutMs = 10_000;

/**
 * The edge's side of the outbound-only link. A connector inside a private network dials this edge's
 * usual port and sends `CONNECT connector.tollgate.invalid:443` naming its pool; the edge answers 200,
 * and from then on the roles are reversed: the edge is the HTTP/2 *client* on the socket the connector
 * opened, so it can open streams into the private network (an HTTP/2 CONNECT stream per tunnel, whose
 * bytes then come on a connection the connector opens with the stream's ticket: `acceptConnection`) with
 * HTTP/2's flow control, stream limits and pings. Before any stream, the edge asks the connector to sign
 * a fresh challenge bound to the TLS session (handshake.ts); an unknown key is refused and audited.
 *
 * A pool with `allow` also admits a connector that presents an OIDC token from its platform (a Kubernetes
 * service-account token) instead of a key: verified against the edge's issuers like a workflow's token,
 * and admitted by one of the pool's policies. Such a session lasts as long as the token: before it
 * expires, the edge asks again on the same link and the connector answers with the token it reads then
 * (the platform rotates the file); a session whose token lapses is closed.
 *
 * The sessions live in {@link ConnectorPools}, which outlives reloads: a reload only closes the sessions
 * whose key or pool it removed.
 */
export const connectorFeature: FeatureFactory<ConnectorFeatureConfig> = (config, dependencies) => {
  const { connectorPools } = dependencies;
  const byName = new Map(config.connectors.map((pool) => [pool.name, pool]));
  connectorPools.retain(
    new Map(config.connectors.map((pool) => [pool.name, new Set(pool.keys.map((key) => key.text))])),
    // A token-admitted session stays only while its pool's policies (as reloaded) still admit its token.
    (member) => {
      const access = byName.get(member.pool)?.tokenAccess;
      return access !== undefined && member.token !== undefined && decide(access, member.token).allow;
    },
  );
  if (config.connectors.length === 0) return undefined;
  return createConnectorFeature(config, dependencies);
};

function createConnectorFeature(
  config: ConnectorFeatureConfig,
  dependencies: FeatureDependencies,
): GatewayFeature {
  const { connectorPools, auditLog, logger, clock } = dependencies;
  const tokens = createTokenAdmission(dependencies);
  const pools = new Map(config.connectors.map((pool) => [pool.name, pool]));

  return {
    name: "connectors",
    claimsConnect: (req) => req.url === connectorAuthority || req.url === connectionAuthority,
    handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer, context: FeatureContext) {
      if (req.url === connectionAuthority) return acceptConnection(req, socket as Socket, head, context);
      const event: AuditEvent = {
        event: "connector.connect",
        request_id: context.requestId,
        decision: "deny",
        reason: "",
        client_ip: context.clientIp,
      };
      const poolName = headerValue(req.headers[connectorPoolHeader]);
      const pool = poolName === undefined ? undefined : pools.get(poolName);
      if (pool === undefined) {
        event.reason = "TG_POLICY_DENIED";
        event.detail = poolName === undefined ? "no pool named" : `unknown pool ${poolName}`;
        if (poolName !== undefined) event.connector_pool = poolName;
        answerConnectError(
          socket as Socket,
          new TollgateError("TG_POLICY_DENIED", event.detail),
          context.requestId,
        );
        auditLog.emit(event, undefined);
        return;
      }
      event.connector_pool = pool.name;
      if (head.length > 0) socket.unshift(head);
      // HTTP/2 takes the socket over only once this answer is written: over TLS, a write still in flight
      // when an HTTP/2 session adopts the socket trips an assertion in Node's native HTTP/2 (Node 20).
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n", () => {
        void establish(socket as Socket, pool, event, context);
      });
    },
    readiness: () => ({ ready: true, detail: { connectors: connectorPools.counts() } }),
    // At the stop (this feature has no retire: a reload keeps the connections): the links are not HTTP
    // requests the server could drain, so they are closed here, and their tunnels with them.
    async close() {
      connectorPools.close();
    },
  };

  /**
   * A connector's connection of its own for one tunnel (see `AwaitedConnection`): admitted by the
   * one-time ticket the edge sent on the authenticated link, handed to the tunnel waiting for it. An
   * unknown, used or expired ticket is refused and audited.
   */
  function acceptConnection(
    req: IncomingMessage,
    socket: Socket,
    head: Buffer,
    context: FeatureContext,
  ): void {
    const ticket = headerValue(req.headers[connectionTicketHeader]);
    const deliver = ticket === undefined ? undefined : connectorPools.claimConnection(ticket);
    if (deliver === undefined) {
      const detail = "a tunnel connection with an unknown, used or expired ticket";
      answerConnectError(socket, new TollgateError("TG_POLICY_DENIED", detail), context.requestId);
      auditLog.emit(
        {
          event: "connector.connect",
          request_id: context.requestId,
          decision: "deny",
          reason: "TG_POLICY_DENIED",
          detail,
          client_ip: context.clientIp,
          duration_ms: clock() - context.startedMs,
        },
        undefined,
      );
      return;
    }
    if (head.length > 0) socket.unshift(head);
    // The answer is queued before the tunnel's first bytes: the socket is handed over after this write.
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    // The tunnel's audit line counts its own bytes, not this CONNECT and its answer.
    countTunnelBytesFrom(socket, head.length);
    deliver(socket);
  }

  async function establish(
    socket: Socket,
    pool: CompiledConnectorPool,
    event: AuditEvent,
    context: FeatureContext,
  ): Promise<void> {
    // Without Nagle's algorithm: a stream's first bytes and WINDOW_UPDATEs are small writes, and over a TLS
    // link Nagle held them for the peer's delayed ACK (≈ 40 ms per new tunnel; bench/connector.mjs, part 4).
    socket.setNoDelay(true);
    const session = connectHttp2("http://connector.tollgate.invalid", {
      createConnection: () => http2Transport(socket),
      // The connector answers streams; it never pushes any (a pushing connector is refused by the protocol).
      settings: { enablePush: false, initialWindowSize: linkStreamWindowBytes },
    });
    session.on("error", () => undefined);
    session.once("connect", () => session.setLocalWindowSize(linkConnectionWindowBytes));
    // The server's sockets allow half-open connections: a connector that went away would only half-close
    // this one, and the session would wait forever. Its end is the link's end.
    socket.once("end", () => session.destroy());
    // And a session that ended for any reason of its own ends the link's socket.
    session.once("close", () => socket.destroy());
    watchLiveness(session, defaultLinkPing, () => session.destroy());
    const challenge = newChallenge();
    // Over TLS the signature covers keying material of this very session: a relayed answer fails.
    const binding = socket instanceof TLSSocket ? channelBindingOf(socket) : undefined;
    let answer: HelloAnswer | undefined;
    try {
      answer = await askAnswer(session, pool.name, challenge, binding !== undefined);
    } catch (error) {
      event.reason = "TG_POLICY_DENIED";
      event.detail = `no answer to the challenge: ${error instanceof Error ? error.message : String(error)}`;
    }
    const proof = { challenge, binding };
    const admitted =
      answer === undefined
        ? undefined
        : answer.token === undefined
          ? admitKey(pool, proof, answer.signature, event)
          : await tokens.admit(pool, proof, answer, undefined, event);
    event.duration_ms = clock() - context.startedMs;
    if (admitted === undefined) {
      event.reason ||= "TG_POLICY_DENIED";
      event.detail ??= "the challenge was not signed by a key of this pool";
      auditLog.emit(event, undefined);
      session.destroy();
      return;
    }
    const connector: ConnectorSession = {
      pool: pool.name,
      keyId: keyId(admitted.publicKey),
      publicKey: admitted.publicKey,
      session,
      active: 0,
      ...(admitted.token === undefined ? {} : { token: admitted.token }),
    };
    event.decision = "allow";
    event.connector_key = connector.keyId;
    auditLog.emit(event, undefined);
    connectorPools.add(connector);
    // Tell the connector it is in the pool (it reports itself connected from then on).
    const welcome = session.request({ ":method": "POST", ":path": welcomePath }, { endStream: true });
    welcome.on("error", () => undefined);
    welcome.on("response", () => welcome.close());
    welcome.resume();
    logger.info(
      {
        component: "connector",
        pool: pool.name,
        key: connector.keyId,
        address: context.clientIp,
        ...(connector.token === undefined
          ? {}
          : { issuer: connector.token.issuer, sub: connector.token.claims.sub }),
      },
      "connector connected",
    );
    const connectedAt = clock();
    // Why the edge closed the link, when it did (a token that lapsed or was refused on renewal).
    const ending: { reason: string; detail?: string } = { reason: "closed" };
    if (connector.token !== undefined) {
      tokens.renewBeforeExpiry(connector, pool, binding, ending, context, (challenge) =>
        askAnswer(session, pool.name, challenge, binding !== undefined),
      );
    }
    session.once("close", () => {
      connectorPools.remove(connector);
      auditLog.emit(
        {
          event: "connector.disconnect",
          request_id: context.requestId,
          decision: "allow",
          reason: ending.reason,
          ...(ending.detail === undefined ? {} : { detail: ending.detail }),
          client_ip: context.clientIp,
          connector_pool: pool.name,
          connector_key: connector.keyId,
          duration_ms: clock() - connectedAt,
        },
        undefined,
      );
      logger.info(
        { component: "connector", pool: pool.name, key: connector.keyId },
        "connector disconnected",
      );
    });
  }

  /** A key answer: the pool key that signed the challenge, or `undefined` (the caller audits the refusal). */
  function admitKey(
    pool: CompiledConnectorPool,
    proof: ChallengeProof,
    signature: string,
    event: AuditEvent,
  ): Admission | undefined {
    if (pool.keys.length === 0) {
      event.detail = `pool ${pool.name} admits connectors by OIDC token only, and this one offered a key`;
      return undefined;
    }
    const publicKey = checkAnswer(pool.keys, pool.name, proof.challenge, proof.binding, signature);
    if (publicKey === undefined) return undefined;
    event.reason = "connector-key-verified";
    return { publicKey };
  }
}

/** Sends the challenge on a new stream of the session; resolves with the connector's answer. */
function askAnswer(
  session: ReturnType<typeof connectHttp2>,
  pool: string,
  challenge: string,
  bound: boolean,
): Promise<HelloAnswer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error("timed out"));
    }, helloTimeoutMs);
    const stream = session.request(
      {
        ":method": "POST",
        ":path": helloPath,
        [connectorPoolHeader]: pool,
        [challengeHeader]: challenge,
        [bindingHeader]: bound ? "tls-exporter" : "none",
      },
      { endStream: true },
    );
    stream.on("response", (headers) => {
      clearTimeout(timer);
      const signature = headers[signatureHeader];
      const token = headers[tokenHeader];
      const sessionKey = headers[sessionKeyHeader];
      stream.close();
      if (headers[":status"] !== 200 || typeof signature !== "string") {
        reject(new Error(`status ${String(headers[":status"])}`));
        return;
      }
      resolve({
        signature,
        ...(typeof token === "string" ? { token } : {}),
        ...(typeof sessionKey === "string" ? { sessionKey } : {}),
      });
    });
    stream.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    stream.resume();
  });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
