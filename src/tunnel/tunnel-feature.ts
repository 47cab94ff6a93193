import type { IncomingMessage, ServerResponse } from "node:http";
import { Socket as NetSocket, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { AuditEvent } from "../audit/types.js";
import { isTollgateError, TollgateError } from "../errors/index.js";
import { admitBody } from "../lib/expect-continue.js";
import type { HeldSlot } from "../limits/index.js";
import type {
  FeatureContext,
  FeatureDependencies,
  FeatureFactory,
  GatewayFeature,
} from "../pipeline/feature.js";
import { answeredFor, auditFailure } from "../pipeline/outcome.js";
import { type AdmissionParts, admit, auditAdmission } from "./admission.js";
import { parseAuthority } from "./destination-check.js";
import { type DialAddress, systemDial, systemLookup } from "./dial.js";
import { forwardHttp, isAbsoluteForm, parseAbsoluteTarget } from "./forward-http.js";
import { proxyCredential } from "./proxy-credential.js";
import { answerConnectError } from "./raw-response.js";
import { type SplicedTunnel, spliceSockets } from "./splice.js";
import { spliceStream } from "./splice-stream.js";
import type { CompiledTunnel, LookupAll } from "./types.js";

/** Options of {@link createTunnelFeatureFactory}: the outside world the tunnel feature talks to. */
export interface TunnelFeatureOptions {
  /** The resolver; default the system's (`dns.lookup`, every address). Tests inject one. */
  readonly lookup?: LookupAll;
  /** Opens the connection to a checked address; default `net.connect`. Tests observe dials with it. */
  readonly dial?: DialAddress;
}

/** The longest a graceful stop waits for tunnels to finish closing. */
const shutdownWaitMs = 3_000;

const connectEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";

/**
 * The tunnel feature's factory with its outside world injected. `undefined` (feature off) when the
 * configuration has no tunnels.
 *
 * @example
 * startGateway(config, { features: [createTunnelFeatureFactory({ lookup: fakeResolver })] });
 */
export function createTunnelFeatureFactory(
  options: TunnelFeatureOptions = {},
): FeatureFactory<TunnelFeatureConfig> {
  return (config, dependencies) =>
    config.compiledTunnels.length === 0 ? undefined : createTunnelFeature(config, dependencies, options);
}

/** The built-in tunnel feature (system resolver), as `builtInFeatures` lists it. */
export const tunnelFeature: FeatureFactory<TunnelFeatureConfig> = createTunnelFeatureFactory();

/** What the tunnel feature reads of the compiled configuration: its tunnels, compiled. */
export interface TunnelFeatureConfig {
  readonly compiledTunnels: readonly CompiledTunnel[];
}

/**
 * CONNECT tunnels and absolute-form forward proxying to allow-listed destinations. Every request goes
 * through {@link admit} (credential → destinations → policy → one resolution, every address checked →
 * connection to exactly the checked address) and produces one audit event; an opened tunnel produces
 * `tunnel.open` and, when it ends, `tunnel.close` with bytes both ways, duration and why it closed.
 */
export function createTunnelFeature(
  config: TunnelFeatureConfig,
  dependencies: FeatureDependencies,
  options: TunnelFeatureOptions = {},
): GatewayFeature {
  const { auditLog, logger, clock, controls, connectorPools } = dependencies;
  const tunnels: readonly CompiledTunnel[] = config.compiledTunnels;
  const lookup = options.lookup ?? systemLookup;
  const dial = options.dial ?? systemDial;
  /** Tunnels carrying traffic. */
  const open = new Set<SplicedTunnel>();
  /** CONNECTs and forwarded requests still being decided or dialled: aborted on shutdown. */
  const pending = new Set<AbortController>();
  let closing = false;
  let allClosed: (() => void) | undefined;

  const partsFor = (context: FeatureContext): AdmissionParts => ({
    tunnels,
    verifier: context.verifier,
    controls,
    connectorPools,
    clientIp: context.clientIp,
    lookup,
    dial,
    clock,
  });

  function shuttingDown(): TollgateError {
    return new TollgateError("TG_SHUTTING_DOWN", "gateway is shutting down");
  }

  async function connect(req: IncomingMessage, socket: Socket, head: Buffer, context: FeatureContext) {
    // Read once: admission checks it, and the audit line redacts it in every form.
    const credential = proxyCredential(req.headers);
    const event: AuditEvent = {
      event: "tunnel.open",
      request_id: context.requestId,
      decision: "deny",
      reason: "",
      client_ip: context.clientIp,
      method: "CONNECT",
      destination: auditedTarget(req.url ?? ""),
    };
    const controller = new AbortController();
    // The client hung up while we decided or dialled: stop, there is nobody left to answer.
    const onGone = () =>
      controller.abort(new TollgateError("TG_BAD_REQUEST", "client closed the connection"));
    socket.once("close", onGone);
    socket.on("error", ignore);
    pending.add(controller);
    let upstream: Socket | Duplex | undefined;
    let slot: HeldSlot | undefined;
    try {
      if (closing) throw shuttingDown();
      const target = parseAuthority(req.url ?? "");
      if (target === undefined) {
        throw new TollgateError(
          "TG_TUNNEL_TARGET_INVALID",
          "the CONNECT target must be host:port (IPv6 addresses in brackets, no zone id)",
        );
      }
      event.destination = target.text;
      const admission = await admit(partsFor(context), credential, target, controller.signal, "tunnel");
      auditAdmission(event, admission.findings);
      if (!admission.admitted) throw admission.error;
      const admitted = admission.upstream;
      upstream = admitted;
      slot = admission.slot;
      if (controller.signal.aborted) throw controller.signal.reason;
      if (closing) throw shuttingDown();
      pending.delete(controller);
      socket.off("close", onGone);
      socket.write(connectEstablished);
      if (head.length > 0) admitted.write(head);
      event.decision = "allow";
      event.reason = "allowed-by-policy";
      event.status = 200;
      event.duration_ms = clock() - context.startedMs;
      auditLog.emit(event, credential?.token);
      startTunnel(socket, admitted, admission.tunnel, event, slot);
    } catch (error) {
      pending.delete(controller);
      socket.off("close", onGone);
      upstream?.destroy();
      slot?.release();
      const gone = controller.signal.aborted && !closing;
      const answered = gone
        ? { code: "client-closed", status: 499 }
        : answerConnectError(socket, error, context.requestId);
      if (gone) {
        socket.destroy();
        event.decision = "error";
      }
      finishRefusal(credential?.token, event, error, answered, context);
    }
  }

  function startTunnel(
    client: Socket,
    upstream: Socket | Duplex,
    tunnel: CompiledTunnel,
    opened: AuditEvent,
    slot: HeldSlot | undefined,
  ): void {
    const openedAt = clock();
    // A socket this edge dialled, or a connector's stream (`via`): each has its splice.
    const splice = upstream instanceof NetSocket ? spliceSockets : spliceStream;
    const spliced = splice(client, upstream as Socket, {
      idleTimeoutMs: tunnel.idleTimeoutMs,
      maxLifetimeMs: tunnel.maxLifetimeMs,
      onClose: (stats) => {
        open.delete(spliced);
        slot?.release();
        const closed: AuditEvent = {
          event: "tunnel.close",
          request_id: opened.request_id,
          decision: "allow",
          reason: stats.reason,
          policy: opened.policy,
          tunnel: tunnel.name,
          identity: opened.identity,
          token_sha256: opened.token_sha256,
          client_ip: opened.client_ip,
          destination: opened.destination,
          upstream: opened.upstream,
          bytes_in: stats.bytesIn,
          bytes_out: stats.bytesOut,
          duration_ms: clock() - openedAt,
        };
        auditLog.emit(closed);
        if (closing && open.size === 0) allClosed?.();
      },
    });
    open.add(spliced);
  }

  function finishRefusal(
    presentedToken: string | undefined,
    event: AuditEvent,
    error: unknown,
    answered: { code: string; status: number },
    context: FeatureContext,
  ): void {
    auditFailure(event, error, answered);
    if (!isTollgateError(error))
      logger.error({ err: error, request_id: context.requestId }, "unexpected error in the tunnel feature");
    event.duration_ms = clock() - context.startedMs;
    auditLog.emit(event, presentedToken);
  }

  return {
    name: "tunnels",
    claimsRequest: (req) => isAbsoluteForm(req.url),
    async handleRequest(req: IncomingMessage, res: ServerResponse, context: FeatureContext) {
      const rawUrl = req.url ?? "";
      // Read once: admission checks it, and the audit line redacts it in every form.
      const credential = proxyCredential(req.headers);
      const event: AuditEvent = {
        event: "gateway.request",
        request_id: context.requestId,
        decision: "deny",
        reason: "",
        client_ip: context.clientIp,
        method: req.method ?? "",
        destination: auditedTarget(rawUrl),
      };
      const controller = new AbortController();
      const onGone = () =>
        controller.abort(new TollgateError("TG_BAD_REQUEST", "client closed the connection"));
      res.once("close", onGone);
      pending.add(controller);
      try {
        if (closing) throw shuttingDown();
        const absolute = parseAbsoluteTarget(rawUrl);
        event.destination = absolute.target.text;
        event.path = absolute.path;
        const admission = await admit(
          partsFor(context),
          credential,
          absolute.target,
          controller.signal,
          "http",
        );
        auditAdmission(event, admission.findings);
        if (!admission.admitted) throw admission.error;
        pending.delete(controller);
        event.decision = "allow";
        event.reason = "allowed-by-policy";
        admitBody(res);
        // A forward-proxied request holds its tunnel's `concurrency` slot while it is forwarded.
        const result = await forwardHttp(
          req,
          res,
          admission.upstream,
          absolute,
          admission.tunnel.idleTimeoutMs,
        ).finally(() => admission.slot?.release());
        event.status = result.status;
        event.bytes_in = result.bytesIn;
        event.bytes_out = result.bytesOut;
        event.duration_ms = clock() - context.startedMs;
        auditLog.emit(event, credential?.token);
      } catch (error) {
        finishRefusal(credential?.token, event, error, answeredFor(error, context.requestId), context);
        // The server answers with the catalogue's status and body (407 with Proxy-Authenticate).
        throw isTollgateError(error)
          ? error
          : new TollgateError("TG_INTERNAL", "tunnel feature failed", { cause: error });
      } finally {
        pending.delete(controller);
        res.off("close", onGone);
      }
    },
    handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer, context: FeatureContext) {
      void connect(req, socket as Socket, head, context);
    },
    async close() {
      closing = true;
      for (const controller of pending) controller.abort(shuttingDown());
      if (open.size === 0) return;
      const done = new Promise<void>((resolve) => {
        allClosed = resolve;
      });
      for (const tunnel of [...open]) tunnel.close("shutdown");
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, shutdownWaitMs);
      });
      await Promise.race([done, waited]);
      clearTimeout(timer);
      if (open.size > 0) logger.warn({ open: open.size }, "tunnels still open after the shutdown wait");
    },
  };
}

/**
 * A request target as the audit event records it before it was parsed: user info removed (a client
 * that puts `user:password@` in a CONNECT target or URL must not see it logged). The audit log cuts long
 * values itself, after redaction, so that a token in the target is found whole before anything is cut.
 */
function auditedTarget(raw: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(raw)?.[0] ?? "";
  const rest = raw.slice(scheme.length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  const at = authority.lastIndexOf("@");
  const cleaned = at === -1 ? raw : `${scheme}[user info removed]${rest.slice(at)}`;
  return cleaned;
}

function ignore(): void {}
