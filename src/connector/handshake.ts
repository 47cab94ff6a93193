import type { KeyObject } from "node:crypto";
import { randomBytes } from "node:crypto";
import { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { sha256Hex } from "../lib/sha256.js";
import { signBytes, verifyBytes } from "./connector-keys.js";

/**
 * The connector's proof of identity, asked on every connection. The edge sends a fresh random challenge;
 * the connector signs `tollgate-connector-v1`, the pool, the challenge and — over TLS — keying material
 * exported from this very TLS session (RFC 5705), with its Ed25519 key. So a recorded answer is worthless
 * on another connection (another challenge) and cannot be relayed through a machine in the middle (another
 * TLS session, other keying material).
 *
 * A connector without a configured key presents an OIDC token from its platform instead, in the same
 * answer, and signs the challenge with a session key of its own (made when it starts, never written
 * down): the signature covers the token's hash, so the token is bound to this challenge and TLS session,
 * and while the session lasts the edge admits that token with no other session key (connector-feature.ts).
 */

/** The label both sides export TLS keying material under (RFC 5705). */
export const tlsExporterLabel = "EXPORTER-tollgate-connector-v1";
/** Bytes of exported keying material bound into the signature. */
export const tlsExporterLength = 32;

/**
 * The keying material of a TLS session both ends compute alike (RFC 5705, with a fixed context: TLS 1.2
 * tells an absent context from an empty one, so both ends must pass the same).
 */
export function channelBindingOf(socket: {
  exportKeyingMaterial(length: number, label: string, context: Buffer): Buffer;
}): Buffer {
  return socket.exportKeyingMaterial(tlsExporterLength, tlsExporterLabel, Buffer.from("tollgate"));
}

/** A fresh challenge: 32 random bytes, base64url. */
export function newChallenge(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * What is signed: every part on its own line, so no part can run into another. With `tokenSha256` (a
 * connector that presents an OIDC token and signs with its session key), a line of its own ties the
 * signature to that very token, under another first line so neither kind of answer passes for the other.
 */
export function challengeBytes(
  pool: string,
  challenge: string,
  channelBinding: Buffer | undefined,
  tokenSha256?: string,
): Buffer {
  const binding = channelBinding === undefined ? "-" : channelBinding.toString("base64url");
  if (tokenSha256 === undefined) {
    return Buffer.from(`tollgate-connector-v1\n${pool}\n${challenge}\n${binding}\n`, "utf8");
  }
  return Buffer.from(
    `tollgate-connector-token-v1\n${pool}\n${challenge}\n${binding}\n${tokenSha256}\n`,
    "utf8",
  );
}

/**
 * The connector's answer: the signature, base64url. With `token` (a connector that authenticates by an
 * OIDC token), `privateKey` is its session key and the signature also covers the token's hash.
 */
export function answerChallenge(
  privateKey: KeyObject,
  pool: string,
  challenge: string,
  channelBinding: Buffer | undefined,
  token?: string,
): string {
  const data = challengeBytes(
    pool,
    challenge,
    channelBinding,
    token === undefined ? undefined : sha256Hex(token),
  );
  return signBytes(privateKey, data).toString("base64url");
}

/**
 * The pool key that made `signature`, or `undefined` when none did. Keys are tried in order (a pool has
 * a handful, for rotation).
 */
export function checkAnswer(
  keys: readonly { readonly text: string; readonly key: KeyObject }[],
  pool: string,
  challenge: string,
  channelBinding: Buffer | undefined,
  signature: string,
  tokenSha256?: string,
): string | undefined {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return undefined;
  const data = challengeBytes(pool, challenge, channelBinding, tokenSha256);
  const bytes = Buffer.from(signature, "base64url");
  return keys.find((candidate) => verifyBytes(candidate.key, data, bytes))?.text;
}

/**
 * The link's socket as node:http2 should see it. Over TLS that is a plain duplex in front of the TLS
 * socket: http2 treats a TLS socket as a negotiated `h2` connection (ALPN) and refuses one that was
 * opened as HTTP/1.1 and switched by CONNECT, as this link is.
 */
export function http2Transport(socket: Duplex): Duplex {
  return socket instanceof TLSSocket ? Duplex.from({ readable: socket, writable: socket }) : socket;
}
