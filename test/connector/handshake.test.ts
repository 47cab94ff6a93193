import { describe, expect, it } from "vitest";
import { answerChallenge, checkAnswer, newChallenge } from "../../src/connector/handshake.js";
import { generateConnectorKey, parsePrivateKey, parsePublicKey } from "../../src/connector/index.js";
import { sha256Hex } from "../../src/lib/sha256.js";

/** The connector's proof of identity: what verifies, and every way a stolen or relayed answer fails. */

const mine = generateConnectorKey();
const other = generateConnectorKey();
const poolKeys = [{ text: mine.publicKey, key: parsePublicKey(mine.publicKey)! }];
const privateKey = parsePrivateKey(mine.privateKeyPem);

describe("connector handshake", () => {
  it("a pool key's signature of this challenge verifies and names the key", () => {
    const challenge = newChallenge();
    const signature = answerChallenge(privateKey, "dc1", challenge, undefined);
    expect(checkAnswer(poolKeys, "dc1", challenge, undefined, signature)).toBe(mine.publicKey);
  });

  it("a recorded answer is refused on a new connection (another challenge)", () => {
    const recorded = answerChallenge(privateKey, "dc1", newChallenge(), undefined);
    expect(checkAnswer(poolKeys, "dc1", newChallenge(), undefined, recorded)).toBeUndefined();
  });

  it("an answer for another pool is refused (a connector cannot join a pool with a key meant for another)", () => {
    const challenge = newChallenge();
    const signature = answerChallenge(privateKey, "dc2", challenge, undefined);
    expect(checkAnswer(poolKeys, "dc1", challenge, undefined, signature)).toBeUndefined();
  });

  it("a key the pool does not list is refused", () => {
    const challenge = newChallenge();
    const signature = answerChallenge(parsePrivateKey(other.privateKeyPem), "dc1", challenge, undefined);
    expect(checkAnswer(poolKeys, "dc1", challenge, undefined, signature)).toBeUndefined();
  });

  it("an answer relayed from another TLS session (other keying material) is refused; with the same, it verifies", () => {
    const challenge = newChallenge();
    const relayed = answerChallenge(privateKey, "dc1", challenge, Buffer.alloc(32, 1));
    expect(checkAnswer(poolKeys, "dc1", challenge, Buffer.alloc(32, 2), relayed)).toBeUndefined();
    expect(checkAnswer(poolKeys, "dc1", challenge, undefined, relayed)).toBeUndefined();
    expect(checkAnswer(poolKeys, "dc1", challenge, Buffer.alloc(32, 1), relayed)).toBe(mine.publicKey);
  });

  it("malformed signatures and public keys are refused, never thrown", () => {
    const challenge = newChallenge();
    for (const junk of ["", "x", "A".repeat(86), "!".repeat(86), `${"A".repeat(85)}=`]) {
      expect(checkAnswer(poolKeys, "dc1", challenge, undefined, junk)).toBeUndefined();
    }
    for (const text of [
      "",
      "ed25519:",
      "ed25519:abc",
      `rsa:${"A".repeat(43)}`,
      `ed25519:${"!".repeat(43)}`,
    ]) {
      expect(parsePublicKey(text)).toBeUndefined();
    }
    expect(parsePublicKey(mine.publicKey)).toBeDefined();
  });

  describe("a token answer (signed with the connector's session key over the token's hash)", () => {
    const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dDpjIn0.c2ln";
    const binding = Buffer.alloc(32, 7);

    it("verifies for this token, challenge and TLS session", () => {
      const challenge = newChallenge();
      const signature = answerChallenge(privateKey, "dc1", challenge, binding, token);
      expect(checkAnswer(poolKeys, "dc1", challenge, binding, signature, sha256Hex(token))).toBe(
        mine.publicKey,
      );
    });

    it("twin: refused for another token (a signature cannot carry a swapped token), challenge or TLS session", () => {
      const challenge = newChallenge();
      const signature = answerChallenge(privateKey, "dc1", challenge, binding, token);
      expect(
        checkAnswer(poolKeys, "dc1", challenge, binding, signature, sha256Hex(`${token}x`)),
      ).toBeUndefined();
      expect(
        checkAnswer(poolKeys, "dc1", newChallenge(), binding, signature, sha256Hex(token)),
      ).toBeUndefined();
      expect(
        checkAnswer(poolKeys, "dc1", challenge, Buffer.alloc(32, 8), signature, sha256Hex(token)),
      ).toBeUndefined();
    });

    it("twin: a key answer does not pass for a token answer, nor the other way round", () => {
      const challenge = newChallenge();
      const keyAnswer = answerChallenge(privateKey, "dc1", challenge, binding);
      const tokenAnswer = answerChallenge(privateKey, "dc1", challenge, binding, token);
      expect(checkAnswer(poolKeys, "dc1", challenge, binding, keyAnswer, sha256Hex(token))).toBeUndefined();
      expect(checkAnswer(poolKeys, "dc1", challenge, binding, tokenAnswer)).toBeUndefined();
    });
  });
});
