import { deciderConditions, identityFromClaims } from "../audit/index.js";
import type { AuditEvent } from "../audit/types.js";
import { isTollgateError } from "../errors/index.js";
import { sha256Hex } from "../lib/sha256.js";
import { authenticate } from "../pipeline/authenticate.js";
import type { ConnectorSession, ConnectorTokenIdentity } from "../pipeline/connectors.js";
import type { FeatureContext, FeatureDependencies } from "../pipeline/feature.js";
import { decide, evaluateAccess } from "../policy/index.js";
import { parsePublicKey } from "./connector-keys.js";
import type { CompiledConnectorPool } from "./connector-schema.js";
import { checkAnswer, newChallenge } from "./handshake.js";

/**
 * The edge's side of connectors that authenticate by a platform OIDC token instead of a configured key:
 * admitting one into a pool (the token bound to the challenge by the connector's session key, verified by
 * the edge's issuers, admitted by the pool's policies, held by one session key at a time), and keeping
 * the session no longer than the token (renewed on the link as the platform rotates it).
 */

/** A connector's answer to a challenge: a signature, and with a token the session key that made it. */
export interface HelloAnswer {
  readonly signature: string;
  readonly token?: string;
  readonly sessionKey?: string;
}

/** The challenge a connector answered, and the TLS session's keying material when the edge has it. */
export interface ChallengeProof {
  readonly challenge: string;
  readonly binding: Buffer | undefined;
}

/** A connector let in: the key it proved (pool key or session key), and its token when it gave one. */
export interface Admission {
  readonly publicKey: string;
  readonly token?: ConnectorTokenIdentity;
}

/** Whether a session's token, or one it presented before and that is still valid, is `tokenSha256`. */
function holds(token: ConnectorTokenIdentity | undefined, tokenSha256: string, now: number): boolean {
  if (token === undefined) return false;
  if (token.tokenSha256 === tokenSha256) return true;
  return token.earlier?.some((old) => old.tokenSha256 === tokenSha256 && old.expiresAtMs > now) === true;
}

/** The shortest wait between two renewals of a token-admitted session (see `renewBeforeExpiry`). */
const minimumRenewalDelayMs = 1_000;
/**
 * The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days); a longer one fires at once.
 * Kubernetes issues year-long projected tokens under its extended-expiry setting.
 */
const maximumTimerMs = 2_147_483_647;

/**
 * The token checks of one loaded configuration, with what they need of the gateway.
 *
 * @example
 * const tokens = createTokenAdmission(dependencies);
 * const admitted = await tokens.admit(pool, { challenge, binding }, answer, undefined, event);
 */
export function createTokenAdmission(
  dependencies: Pick<
    FeatureDependencies,
    "verifier" | "controls" | "connectorPools" | "auditLog" | "logger" | "clock"
  >,
) {
  const { verifier, controls, connectorPools, auditLog, logger, clock } = dependencies;
  return { admit, renewBeforeExpiry };

  /**
   * A token answer: the challenge signed by the connector's session key over the token's hash, the token
   * verified by the edge's issuers, one of the pool's policies admitting it, and no other session holding
   * the token with another session key. `renewing`: the session asking again, whose session key the
   * answer must be signed with. Writes the outcome into `event`; `undefined` when refused.
   */
  async function admit(
    pool: CompiledConnectorPool,
    proof: ChallengeProof,
    answer: HelloAnswer,
    renewing: ConnectorSession | undefined,
    event: AuditEvent,
  ): Promise<Admission | undefined> {
    const token = answer.token ?? "";
    const tokenSha256 = sha256Hex(token);
    event.token_sha256 = tokenSha256;
    event.reason = "TG_POLICY_DENIED";
    if (pool.tokenAccess === undefined) {
      event.detail = `pool ${pool.name} admits connectors by key only (it has no allow), and this one offered a token`;
      return undefined;
    }
    const sessionKey = answer.sessionKey;
    const parsed = sessionKey === undefined ? undefined : parsePublicKey(sessionKey);
    if (sessionKey === undefined || parsed === undefined) {
      event.detail = "the token came without a valid session key";
      return undefined;
    }
    if (renewing !== undefined && renewing.publicKey !== sessionKey) {
      event.detail = "the renewed token was signed with another session key than the session's";
      return undefined;
    }
    const signed = checkAnswer(
      [{ text: sessionKey, key: parsed }],
      pool.name,
      proof.challenge,
      proof.binding,
      answer.signature,
      tokenSha256,
    );
    if (signed === undefined) {
      event.detail = "the challenge was not signed for this token by the session key";
      return undefined;
    }
    // As every token the edge checks: behind listen.auth_failures, a failure counted against the address.
    const authentication = await authenticate(
      verifier,
      token,
      undefined,
      controls.authFailures,
      event.client_ip,
    );
    if (!authentication.ok) {
      const { error } = authentication;
      event.reason = isTollgateError(error) ? error.code : "TG_TOKEN_INVALID";
      event.detail = error instanceof Error ? error.message : "the token did not verify";
      if (authentication.limit !== undefined) event.limit = authentication.limit;
      return undefined;
    }
    const { verified } = authentication;
    const identity = { issuer: verified.issuer, claims: verified.claims };
    event.identity = identityFromClaims(verified.claims);
    // The issuer's clock skew lets a token pass a little past `exp`; a session ends at `exp` itself, so a
    // connector is not let back in on the token its session just expired with.
    if (verified.expiresAtMs <= clock()) {
      event.reason = "TG_TOKEN_EXPIRED";
      event.detail = "the token's exp has passed (a connector's session lasts no longer than its token)";
      return undefined;
    }
    const decision = decide(pool.tokenAccess, identity);
    if (!decision.allow) {
      event.reason = decision.reason;
      if (decision.policy !== undefined) event.policy = decision.policy;
      event.conditions = deciderConditions(evaluateAccess(pool.tokenAccess, identity));
      event.detail = `no policy of pool ${pool.name} admits this token`;
      return undefined;
    }
    event.policy = decision.policy;
    // A bearer token admits whoever holds it; while this token's connector is connected, a second session
    // key presenting it (someone who copied the token) is refused, and the refusal is audited.
    const now = clock();
    const holder = connectorPools
      .members()
      .find((member) => member.publicKey !== sessionKey && holds(member.token, tokenSha256, now));
    if (holder !== undefined) {
      event.detail = `this token is in use by another connector session (key ${holder.keyId}, pool ${holder.pool})`;
      return undefined;
    }
    if (renewing?.token !== undefined && renewing.token.claims.sub !== verified.claims.sub) {
      event.detail = "the renewed token names another subject than the session's";
      return undefined;
    }
    event.reason = decision.reason;
    const previous = renewing?.token;
    // A token the platform rotated out stays valid until its own `exp`: it remains this session's, so a
    // copy of it is still refused to anyone else.
    const earlier =
      previous === undefined || previous.tokenSha256 === tokenSha256
        ? (previous?.earlier ?? [])
        : [...(previous.earlier ?? []), previous];
    const identityOfToken: ConnectorTokenIdentity = {
      ...identity,
      tokenSha256,
      expiresAtMs: verified.expiresAtMs,
      earlier: earlier
        .filter((token) => token.expiresAtMs > now)
        .map(({ tokenSha256: hash, expiresAtMs }) => ({ tokenSha256: hash, expiresAtMs })),
    };
    return { publicKey: sessionKey, token: identityOfToken };
  }

  /**
   * Keeps a token-admitted session no longer than its token: halfway to the token's expiry (at least a
   * second apart) the edge asks the connector again on the link, and it answers with the token it reads
   * now. A newer token pushes the expiry out; the same one again waits for the next half; a refusal
   * (another subject, a policy that no longer admits it) or the expiry closes the session. Kubernetes
   * rotates a projected token at 80 % of its life, so renewals find the new one well before the old lapses.
   */
  function renewBeforeExpiry(
    connector: ConnectorSession,
    pool: CompiledConnectorPool,
    binding: Buffer | undefined,
    ending: { reason: string; detail?: string },
    context: FeatureContext,
    ask: (challenge: string) => Promise<HelloAnswer>,
  ): void {
    const { session } = connector;
    let expiry: NodeJS.Timeout | undefined;
    let renewal: NodeJS.Timeout | undefined;
    const close = (reason: string, detail: string) => {
      ending.reason = reason;
      ending.detail = detail;
      session.destroy();
    };
    const schedule = () => {
      const token = connector.token!;
      const remainingMs = token.expiresAtMs - clock();
      clearTimeout(expiry);
      clearTimeout(renewal);
      expiry = setTimeout(
        () => {
          // A timer clamped to the longest a timer waits fired before the expiry: wait on.
          if (clock() < connector.token!.expiresAtMs) return void schedule();
          close("TG_TOKEN_EXPIRED", "the connector's token expired before a newer one was presented");
        },
        Math.min(maximumTimerMs, Math.max(0, remainingMs)),
      );
      expiry.unref();
      if (remainingMs <= minimumRenewalDelayMs) return;
      renewal = setTimeout(
        () => void renew(),
        Math.min(maximumTimerMs, Math.max(minimumRenewalDelayMs, remainingMs / 2)),
      );
      renewal.unref();
    };
    const renew = async () => {
      const event: AuditEvent = {
        event: "connector.connect",
        request_id: context.requestId,
        decision: "deny",
        reason: "",
        client_ip: context.clientIp,
        connector_pool: pool.name,
        connector_key: connector.keyId,
      };
      const challenge = newChallenge();
      let answer: HelloAnswer;
      try {
        answer = await ask(challenge);
      } catch {
        // No answer now (a busy link): the expiry stays as it was, and the next half asks again.
        if (!session.destroyed) schedule();
        return;
      }
      if (session.destroyed) return;
      const renewed =
        answer.token === undefined
          ? undefined
          : await admit(pool, { challenge, binding }, answer, connector, event);
      if (session.destroyed) return;
      if (renewed?.token === undefined) {
        // Not the connector's doing (the issuer's keys unavailable, its address throttled by others'
        // failures): the session keeps its expiry, and the next half asks again.
        if (event.reason.startsWith("TG_ISSUER_") || event.limit !== undefined) return void schedule();
        event.detail = `renewal refused: ${event.detail ?? "no token in the answer"}`;
        auditLog.emit(event, undefined);
        close(event.reason || "TG_POLICY_DENIED", event.detail);
        return;
      }
      if (renewed.token.tokenSha256 !== connector.token?.tokenSha256) {
        logger.info(
          {
            component: "connector",
            pool: pool.name,
            key: connector.keyId,
            token_sha256: renewed.token.tokenSha256,
          },
          "connector presented a renewed token",
        );
      }
      connector.token = renewed.token;
      schedule();
    };
    session.once("close", () => {
      clearTimeout(expiry);
      clearTimeout(renewal);
    });
    schedule();
  }
}
