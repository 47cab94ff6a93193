import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLog, createLogger, createRedactor } from "../../src/audit/index.js";
import type { AuditEvent } from "../../src/audit/types.js";

/** Two canaries: a token-like one and one full of characters that JSON, URLs and base64 treat specially. */
const plainCanary = `tgcanary${randomBytes(12).toString("hex")}`;
const nastyCanary = `tg/canary+${randomBytes(6).toString("hex")}"\\ ?&=%é\n~>`;

/** Every way a canary can end up in a log line by mistake. */
function leakyForms(secret: string): Record<string, string> {
  const bytes = Buffer.from(secret, "utf8");
  return {
    raw: secret,
    base64: bytes.toString("base64"),
    base64Unpadded: bytes.toString("base64").replace(/=+$/, ""),
    base64url: bytes.toString("base64url"),
    urlEncoded: encodeURIComponent(secret),
    urlEncodedLowerHex: encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
    jsonString: JSON.stringify({ token: secret }),
    basicAuth: `Basic ${Buffer.from(`oidc:${secret}`).toString("base64")}`,
    basicAuthShifted: Buffer.from(`x:${secret}`).toString("base64"),
    base64urlInside: Buffer.from(`ab${secret}cd`).toString("base64url"),
  };
}

/** How each form looks once it is inside a JSON line (what is actually in the file). */
function inFile(form: string): string {
  return JSON.stringify(form).slice(1, -1);
}

let jwt: string;
let folder: string;
beforeAll(async () => {
  const { privateKey } = await generateKeyPair("RS256");
  jwt = await new SignJWT({ repository: "octo-org/octo-repo" })
    .setProtectedHeader({ alg: "RS256" })
    .setIssuer("https://token.actions.githubusercontent.com")
    .setAudience("tollgate")
    .setExpirationTime("5m")
    .sign(privateKey);
  folder = await mkdtemp(join(tmpdir(), "tollgate-audit-"));
});
afterAll(() => rm(folder, { recursive: true, force: true }));

/** Writes every denial on its own line: these tests are about what a line holds, not how many there are. */
const everyDenial = { windowMs: 0, maxSources: 1 };

function event(fields: Partial<AuditEvent>): AuditEvent {
  return {
    event: "gateway.request",
    request_id: "r-1",
    decision: "deny",
    reason: "TG_TOKEN_INVALID",
    ...fields,
  };
}

describe("redaction canary", () => {
  it("keeps every form of a registered secret, and any JWT, out of the audit sink", async () => {
    const redactor = createRedactor();
    redactor.register(plainCanary);
    redactor.register(nastyCanary);
    const sink = join(folder, "canary", "audit.jsonl");
    // Every line is a denial from one source: written one by one here, not folded (denial-aggregation tests).
    const audit = createAuditLog({ sink, redactor, denials: everyDenial });

    const forms = { ...leakyForms(plainCanary), ...prefixed("nasty-", leakyForms(nastyCanary)), jwt };
    for (const [name, form] of Object.entries(forms)) {
      audit.emit(event({ detail: `leaked ${name}: ${form} (end)`, path: `/p?${name}=${form}` }));
    }
    await audit.flush();

    const text = await readFile(sink, "utf8");
    const lines = text.trimEnd().split("\n");
    expect(lines).toHaveLength(Object.keys(forms).length);
    for (const line of lines) {
      // Redaction must not break the JSON of a line.
      const parsed = JSON.parse(line) as AuditEvent;
      expect(parsed.detail).toMatch(/^leaked [\w-]+: .*\[REDACTED\].* \(end\)$/);
    }
    for (const [name, form] of Object.entries(forms)) {
      expect(text.includes(form), name).toBe(false);
      expect(text.includes(inFile(form)), `${name} as JSON`).toBe(false);
    }
    for (const secret of [plainCanary, nastyCanary]) {
      expect(text.includes(secret)).toBe(false);
      expect(text.includes(inFile(secret))).toBe(false);
    }
    expect(text).not.toMatch(/eyJ[\w-]*\.eyJ[\w-]*\./);
  });

  it("passes ordinary text through unchanged (deny twin: nothing registered matches)", async () => {
    const redactor = createRedactor();
    redactor.register(plainCanary);
    redactor.register("short"); // ignored: too short to be a secret, would blank ordinary words
    const sink = join(folder, "plain.jsonl");
    // Every line is a denial from one source: written one by one here, not folded (denial-aggregation tests).
    const audit = createAuditLog({ sink, redactor, denials: everyDenial });
    const ordinary = [
      "short words stay",
      plainCanary.slice(0, -1), // a near miss is not the secret
      "eyJhbGciOiJSUzI1NiJ9 alone is not a token",
      "repo:octo-org/octo-repo:ref:refs/heads/main",
      "c29tZSBiYXNlNjQgdGV4dA==",
    ];
    for (const detail of ordinary) audit.emit(event({ detail }));
    await audit.flush();
    const lines = (await readFile(sink, "utf8")).trimEnd().split("\n");
    expect(lines.map((line) => (JSON.parse(line) as AuditEvent).detail)).toEqual(ordinary);
  });

  it("redacts the operational logger's lines the same way, and blanks credential headers by key", async () => {
    const redactor = createRedactor();
    redactor.register(plainCanary);
    const stream = new PassThrough();
    let output = "";
    stream.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const logger = createLogger({ redactor, destination: stream });
    logger.error(
      { err: new Error(`upstream said ${plainCanary}`) },
      `failed with ${Buffer.from(plainCanary).toString("base64")}`,
    );
    logger.info({ headers: { authorization: "Basic dXNlcjpodW50ZXIy", "gateway-authorization": "x" } }, jwt);
    logger.info({ note: "ordinary" }, "nothing secret here");

    const lines = output.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(output).not.toContain(plainCanary);
    expect(output).not.toContain(Buffer.from(plainCanary).toString("base64"));
    expect(output).not.toContain(jwt);
    expect(output).not.toContain("dXNlcjpodW50ZXIy");
    const last = JSON.parse(lines[2]!) as { msg: string; note: string };
    expect(last).toMatchObject({ msg: "nothing secret here", note: "ordinary" });
  });
});

describe("createRedactor", () => {
  it("returns a line without secrets as it is", () => {
    const redactor = createRedactor();
    redactor.register(plainCanary);
    const line = '{"event":"gateway.request","path":"/artifacts/a.zip"}';
    expect(redactor.redact(line)).toBe(line);
  });

  it("replaces a secret at any byte offset inside a larger base64 or base64url value", () => {
    const redactor = createRedactor();
    redactor.register(plainCanary);
    for (const lead of ["", "a", "ab", "abc", "user:", "oidc:"]) {
      for (const encoding of ["base64", "base64url"] as const) {
        const encoded = Buffer.from(`${lead}${plainCanary}!trailing`).toString(encoding);
        const out = redactor.redact(`auth=${encoded}`);
        expect(out, `${lead} ${encoding}`).toContain("[REDACTED]");
        expect(Buffer.from(out.slice(5), encoding).toString().includes(plainCanary)).toBe(false);
      }
    }
  });

  it("redacts JWT-shaped strings even when nothing is registered", () => {
    const redactor = createRedactor();
    expect(redactor.redact(`token ${jwt} end`)).toBe("token [REDACTED] end");
  });
});

describe("createAuditLog", () => {
  it("writes one JSON line per event with time first, and flush() makes them readable", async () => {
    const sink = join(folder, "nested", "dir", "events.jsonl");
    const clock = () => Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const audit = createAuditLog({ sink, redactor: createRedactor(), clock });
    audit.emit(event({ route: "artifacts", status: 200, identity: { repository: "octo-org/octo-repo" } }));
    audit.emit(event({ event: "auth.denied", request_id: "r-2" }));
    await audit.flush();

    const lines = (await readFile(sink, "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]!.startsWith('{"time":"2026-01-02T03:04:05.678Z","event":"gateway.request"')).toBe(true);
    expect(JSON.parse(lines[0]!)).toEqual({
      time: "2026-01-02T03:04:05.678Z",
      event: "gateway.request",
      request_id: "r-1",
      decision: "deny",
      reason: "TG_TOKEN_INVALID",
      route: "artifacts",
      status: 200,
      identity: { repository: "octo-org/octo-repo" },
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({ event: "auth.denied", request_id: "r-2" });
  });

  it("never throws from emit, and reports what it could not write", async () => {
    const errors: Error[] = [];
    const sink = join(folder, "unserialisable.jsonl");
    const audit = createAuditLog({
      sink,
      redactor: createRedactor(),
      onError: (error) => errors.push(error),
    });
    const bad = event({}) as AuditEvent & { extra: bigint };
    bad.extra = 1n;
    expect(() => audit.emit(bad)).not.toThrow();
    audit.emit(event({ request_id: "after" }));
    await audit.flush();
    expect(errors).toHaveLength(1);
    const lines = (await readFile(sink, "utf8")).trimEnd().split("\n");
    expect(lines.map((line) => (JSON.parse(line) as AuditEvent).request_id)).toEqual(["after"]);
  });

  it("reports a sink that cannot be opened instead of throwing", async () => {
    const errors: Error[] = [];
    const blocker = join(folder, "a-file");
    const fileAudit = createAuditLog({ sink: blocker, redactor: createRedactor() });
    fileAudit.emit(event({}));
    await fileAudit.flush();
    // A path *below* a regular file can never be created.
    const audit = createAuditLog({
      sink: join(blocker, "x.jsonl"),
      redactor: createRedactor(),
      onError: (e) => errors.push(e),
    });
    expect(() => audit.emit(event({}))).not.toThrow();
    await audit.flush();
    expect(errors.length).toBeGreaterThan(0);
  });
});

function prefixed(prefix: string, record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [`${prefix}${key}`, value]));
}
