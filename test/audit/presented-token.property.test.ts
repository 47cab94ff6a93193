import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createAuditLog, createRedactor } from "../../src/audit/index.js";
import { createAuditLineEncoder } from "../../src/audit/line-encoder.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { propertySettings } from "../helpers/property.js";

/**
 * Issue 12, class 5: the token a request presents is a secret for that request's audit line in every form
 * the redactor knows, wherever the request put it (path, query, host, anything audited), and JWT shapes
 * are found after percent-decoding too. The generators write the token the ways a careless or hostile
 * client would: raw, base64 (padded or not), base64url, URL-encoded with either hex case, dots alone
 * encoded, random characters encoded, encoded twice, base64 then URL-encoded.
 */

const base64urlChar = fc.constantFrom(
  ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".split(""),
);
const base64urlText = (min: number, max: number) =>
  fc.array(base64urlChar, { minLength: min, maxLength: max }).map((chars) => chars.join(""));

/** A JWS compact token as an OIDC issuer sends one: `eyJ…` header and payload, a signature. */
const jwtToken = fc
  .tuple(base64urlText(10, 60), base64urlText(40, 400), base64urlText(43, 342))
  .map(([header, payload, signature]) => `eyJ${header}.eyJ${payload}.${signature}`);

/** Each percent-encodes `text` once, by the rule its name says. */
const percentEncode = (text: string, pick: (index: number) => boolean, lower: boolean): string =>
  [...text]
    .map((char, index) => {
      if (!pick(index)) return char;
      const hex = char.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0");
      return `%${lower ? hex.toLowerCase() : hex}`;
    })
    .join("");

type Spelling = (token: string, seed: readonly boolean[]) => string;
const spellings: Record<string, Spelling> = {
  raw: (token) => token,
  base64: (token) => Buffer.from(token).toString("base64"),
  base64Unpadded: (token) => Buffer.from(token).toString("base64").replace(/=+$/, ""),
  base64url: (token) => Buffer.from(token).toString("base64url"),
  base64ThenUrlEncoded: (token) => encodeURIComponent(Buffer.from(token).toString("base64")),
  urlEncodedUpper: (token) => percentEncode(token, () => true, false),
  urlEncodedLower: (token) => percentEncode(token, () => true, true),
  dotsEncoded: (token, seed) => token.replaceAll(".", seed[0] ? "%2e" : "%2E"),
  someCharsEncoded: (token, seed) =>
    percentEncode(token, (index) => seed[index % seed.length] === true, seed[1] === true),
  encodedTwice: (token, seed) =>
    percentEncode(
      percentEncode(token, (index) => seed[index % seed.length] === true, false),
      (index) => seed[(index + 1) % seed.length] === true,
      false,
    ),
  insideBase64: (token) => Buffer.from(`user:${token}`).toString("base64"),
};

/** Characters a client may put around the token in a request target. */
const pathText = fc
  .array(fc.constantFrom(..."abcxyz019/-._~?&=".split("")), { maxLength: 40 })
  .map((chars) => chars.join(""));

/** Every way the token can be read back out of a line: its encodings, and the line percent-decoded. */
function leakedForms(line: string, token: string): string[] {
  const bytes = Buffer.from(token);
  const forms = [
    token,
    bytes.toString("base64").replace(/=+$/, ""),
    bytes.toString("base64url"),
    encodeURIComponent(token),
    // The signature is the secret part: it must not survive in any of the views below either.
    token.slice(token.lastIndexOf(".") + 1),
  ];
  const views = [line, ...percentDecodings(line)];
  return forms.filter((form) => views.some((view) => view.includes(form)));
}

/** The line decoded once, twice, … until nothing changes (what layers of lenient decoders would see). */
function percentDecodings(text: string): string[] {
  const out: string[] = [];
  let current = text;
  for (let depth = 0; depth < 6; depth++) {
    const next = current.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    if (next === current) break;
    out.push(next);
    current = next;
  }
  return out;
}

function requestEvent(path: string, host: string): AuditEvent {
  return {
    event: "gateway.request",
    request_id: "r-1",
    decision: "deny",
    reason: "TG_POLICY_DENIED",
    client_ip: "192.0.2.7",
    method: "GET",
    host,
    path,
    route: "artifacts",
    token_sha256: "0".repeat(64),
  };
}

describe("the presented token in its own audit line (property)", () => {
  // No form of the token a request presented appears in that request's audit line, whatever form and place the request gave it.
  it("keeps every spelling of the presented token out of the line", () => {
    fc.assert(
      fc.property(
        jwtToken,
        fc.constantFrom(...Object.keys(spellings)),
        fc.array(fc.boolean(), { minLength: 2, maxLength: 16 }),
        pathText,
        pathText,
        fc.boolean(),
        (token, spellingName, seed, before, after, inHost) => {
          const written = spellings[spellingName]!(token, seed);
          const encoder = createAuditLineEncoder({ redactor: createRedactor() });
          const path = inHost ? `/${before}${after}` : `/${before}${written}${after}`;
          const host = inHost ? `${written}.example` : "gateway.example";
          encoder.append(Date.UTC(2026, 11, 6), requestEvent(path, host), token);
          const line = encoder.take()!.toString("utf8");
          JSON.parse(line);
          expect(leakedForms(line, token)).toEqual([]);
        },
      ),
      propertySettings(1_500),
    );
  });

  // A JWT-shaped string anywhere in logged text is redacted even when some of its characters are percent-encoded, once or twice.
  it("finds JWT shapes after percent-decoding, with nothing registered", () => {
    fc.assert(
      fc.property(
        jwtToken,
        fc.constantFrom("dotsEncoded", "someCharsEncoded", "encodedTwice", "urlEncodedLower"),
        fc.array(fc.boolean(), { minLength: 2, maxLength: 16 }),
        pathText,
        (token, spellingName, seed, around) => {
          const redactor = createRedactor();
          const text = `GET /x/${around}${spellings[spellingName]!(token, seed)}${around}`;
          const out = redactor.redact(text);
          for (const view of [out, ...percentDecodings(out)]) {
            expect(view).not.toMatch(/eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\./);
          }
        },
      ),
      propertySettings(1_500),
    );
  });

  // Redacting a JSON log line never breaks its JSON, whatever encoded token it carried.
  it("keeps a redacted JSON line valid JSON (the operational logger redacts whole lines)", () => {
    fc.assert(
      fc.property(
        jwtToken,
        fc.constantFrom(...Object.keys(spellings)),
        fc.array(fc.boolean(), { minLength: 2, maxLength: 16 }),
        pathText,
        (token, spellingName, seed, around) => {
          const redactor = createRedactor();
          const line = JSON.stringify({
            msg: "request",
            url: `/${around}${spellings[spellingName]!(token, seed)}`,
          });
          const out = redactor.redact(line);
          expect(() => JSON.parse(out)).not.toThrow();
        },
      ),
      propertySettings(500),
    );
  });

  // Text with no token in it comes out of redaction exactly as it went in, percent-escapes and all (the deny twin).
  it("leaves token-free text unchanged", () => {
    fc.assert(
      fc.property(
        fc
          .array(fc.constantFrom(..."abcXYZ019/-._~?&=%2e%2E%41eyJ".split("")), { maxLength: 200 })
          .map((chars) => chars.join("")),
        (text) => {
          const redactor = createRedactor();
          expect(redactor.redact(text)).toBe(text);
        },
      ),
      propertySettings(1_000),
    );
  });
});

describe("the presented token through the audit log", () => {
  it("is redacted from a long path however it was written, and the path is cut after redaction", async () => {
    const { mkdtemp, readFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const folder = await mkdtemp(join(tmpdir(), "tollgate-presented-"));
    try {
      const sink = join(folder, "audit.jsonl");
      // Two denials from one source: written one by one here, not folded into a counted line.
      const audit = createAuditLog({
        sink,
        redactor: createRedactor(),
        denials: { windowMs: 0, maxSources: 1 },
      });
      // A long token whose base64 form runs past the 2048 characters a path keeps in the line.
      const token = `eyJ${"h".repeat(30)}.eyJ${"p".repeat(1300)}.${"s".repeat(342)}`;
      const base64 = Buffer.from(token).toString("base64");
      audit.emit(requestEvent(`/r/${"x".repeat(300)}${base64}`, "gateway.example"), token);
      audit.emit(requestEvent("/r/ordinary", "gateway.example"), token);
      await audit.flush();
      const lines = (await readFile(sink, "utf8")).trimEnd().split("\n");
      expect(lines).toHaveLength(2);
      expect(leakedForms(lines[0]!, token)).toEqual([]);
      expect(JSON.parse(lines[0]!).path).toContain("[REDACTED]");
      // The twin: a path without the token is written as it came.
      expect(JSON.parse(lines[1]!).path).toBe("/r/ordinary");
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
