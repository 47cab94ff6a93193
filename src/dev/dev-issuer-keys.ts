import { randomUUID } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
} from "jose";

/** The dev issuer's signing key: the private key and the public JWK it publishes. */
export interface DevSigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** What the key file holds: the private RSA members with `kid` and `alg`. */
  readonly privateJwk: JWK;
  /** Public members only, with `kid`, `alg` and `use`. */
  readonly publicJwk: JWK;
}

/** How a token is minted; every field is optional. Times are seconds since the epoch. */
export interface MintOptions {
  /** Lifetime from `iat` (default 300: GitHub's tokens live five minutes). */
  expiresInSeconds?: number;
  /** `iat` (default: now). */
  issuedAt?: number;
  /** `nbf` (default: `iat`). */
  notBefore?: number;
  /** `aud`; absent means no `aud` unless the claims carry one. */
  audience?: string | string[];
  /** Extra protected header parameters (tests use it for hostile headers such as `jku`). */
  header?: Record<string, unknown>;
  /** `kid` to put in the header instead of the signing key's own. */
  keyId?: string;
}

const alg = "RS256";

/** Generates a fresh RS256 key pair; `kid` defaults to the JWK thumbprint (RFC 7638). */
export async function generateDevSigningKey(keyId?: string): Promise<DevSigningKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return fromPrivateJwk(await exportJWK(privateKey), keyId);
}

/**
 * Loads the private JWK in `keyFile`, or creates the file (mode 0600, never overwriting a file that
 * appeared meanwhile) with a new key. This is how `tollgate dev` and a later `tollgate dev mint` share a key.
 */
export async function loadOrCreateKeyFile(keyFile: string, keyId?: string): Promise<DevSigningKey> {
  try {
    return await readKeyFile(keyFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const key = await generateDevSigningKey(keyId);
  try {
    await writeFile(keyFile, keyFileText(key), { mode: 0o600, flag: "wx" });
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return readKeyFile(keyFile);
    throw error;
  }
}

/** Replaces the key in `keyFile` atomically (a concurrent reader sees the old or the new key, whole). */
export async function replaceKeyFile(keyFile: string, key: DevSigningKey): Promise<void> {
  const temporary = `${keyFile}.${randomUUID()}.tmp`;
  await writeFile(temporary, keyFileText(key), { mode: 0o600, flag: "wx" });
  await rename(temporary, keyFile);
}

/** Reads a private RSA JWK written by {@link loadOrCreateKeyFile}. */
export async function readKeyFile(keyFile: string): Promise<DevSigningKey> {
  const text = await readFile(keyFile, "utf8");
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch (cause) {
    throw new Error(`dev issuer key file ${keyFile} is not JSON`, { cause });
  }
  if (jwk.kty !== "RSA" || typeof jwk.d !== "string") {
    throw new Error(`dev issuer key file ${keyFile} does not hold a private RSA JWK`);
  }
  return fromPrivateJwk(jwk, jwk.kid);
}

/**
 * Signs a token the way the dev issuer does: `iss`, `iat`, `nbf`, `exp` and a random `jti` are stamped,
 * then the caller's claims are applied on top (so a test can override or, with `undefined`, remove any
 * of them).
 */
export async function signDevToken(
  key: DevSigningKey,
  issuerUrl: string,
  claims: Record<string, unknown>,
  options: MintOptions,
  nowMs: number,
): Promise<string> {
  const iat = options.issuedAt ?? Math.floor(nowMs / 1000);
  const payload: JWTPayload = {
    iss: issuerUrl,
    ...(options.audience === undefined ? {} : { aud: options.audience }),
    iat,
    nbf: options.notBefore ?? iat,
    exp: iat + (options.expiresInSeconds ?? 300),
    jti: randomUUID(),
    ...claims,
  };
  const header = { alg, typ: "JWT", kid: options.keyId ?? key.kid, ...options.header } as JWTHeaderParameters;
  // jose refuses to sign a `crit` header it does not know; declaring the names lets tests build one.
  const crit = Array.isArray(header.crit)
    ? Object.fromEntries(header.crit.map((name: unknown) => [String(name), true]))
    : undefined;
  return new SignJWT(payload)
    .setProtectedHeader(header)
    .sign(key.privateKey, crit === undefined ? undefined : { crit });
}

async function fromPrivateJwk(jwk: JWK, keyId: string | undefined): Promise<DevSigningKey> {
  const { kty, n, e, d, p, q, dp, dq, qi } = jwk;
  const publicMembers = { kty, n, e } as JWK;
  const kid = keyId ?? (await calculateJwkThumbprint(publicMembers));
  const privateJwk = Object.freeze({ kty, n, e, d, p, q, dp, dq, qi, kid, alg } as JWK);
  const privateKey = (await importJWK(privateJwk, alg)) as CryptoKey;
  return Object.freeze({
    kid,
    privateKey,
    privateJwk,
    publicJwk: Object.freeze({ ...publicMembers, kid, alg, use: "sig" }),
  });
}

function keyFileText(key: DevSigningKey): string {
  return `${JSON.stringify(key.privateJwk)}\n`;
}
