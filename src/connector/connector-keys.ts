import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { sha256Hex } from "../lib/sha256.js";

/**
 * The connector's identity: an Ed25519 key pair. The private key stays in the connector's file (PKCS #8
 * PEM, mode 0600); the edge's configuration lists public keys as `ed25519:<base64url of the 32 raw
 * bytes>`, short enough to paste, several per pool so keys can be rotated. Signing and verifying are
 * node:crypto's (OpenSSL), never written here.
 */

const publicKeyPrefix = "ed25519:";

/** A new key pair: the private key as PEM, and the public key as the configuration writes it. */
export function generateConnectorKey(): { privateKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKey: formatPublicKey(publicKey),
  };
}

/** Reads a private key from PEM text; throws when it is not an Ed25519 private key. */
export function parsePrivateKey(pem: string): KeyObject {
  const key = createPrivateKey({ key: pem, format: "pem" });
  if (key.asymmetricKeyType !== "ed25519") throw new Error("the key is not an Ed25519 private key");
  return key;
}

/** The public key of a private key, as the configuration writes it. */
export function publicKeyOf(privateKey: KeyObject): string {
  return formatPublicKey(createPublicKey(privateKey));
}

function formatPublicKey(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: "jwk" });
  return `${publicKeyPrefix}${jwk.x}`;
}

/** Parses `ed25519:<base64url>`; `undefined` for anything else (the configuration reports it). */
export function parsePublicKey(text: string): KeyObject | undefined {
  if (!text.startsWith(publicKeyPrefix)) return undefined;
  const x = text.slice(publicKeyPrefix.length);
  if (!/^[A-Za-z0-9_-]{43}$/.test(x)) return undefined;
  try {
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
  } catch {
    return undefined;
  }
}

/** A short, stable name for a public key in logs and audit lines (never the key's bytes alone). */
export function keyId(publicKey: string): string {
  return sha256Hex(publicKey).slice(0, 12);
}

export function signBytes(privateKey: KeyObject, data: Buffer): Buffer {
  return sign(null, data, privateKey);
}

export function verifyBytes(publicKey: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}
