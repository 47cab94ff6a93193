import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createRedactor } from "../../src/audit/index.js";
import { createAuditLineEncoder } from "../../src/audit/line-encoder.js";
import type { AuditEvent } from "../../src/audit/types.js";

// The encoder writes lines as bytes and copies what repeats from the line before. Its reference is what
// the audit log wrote before it existed: `JSON.stringify` of the event, `time` first, `identity` last.
function reference(timeMs: number, event: AuditEvent): string {
  const { identity, ...rest } = event;
  const ordered: Record<string, unknown> = { time: new Date(timeMs).toISOString(), ...rest };
  if (identity !== undefined) ordered.identity = identity;
  return `${JSON.stringify(ordered)}\n`;
}

const identity = {
  iss: "https://token.actions.githubusercontent.com",
  sub: "repo:octo-org/octo-repo:ref:refs/heads/main",
  repository: "octo-org/octo-repo",
  repository_owner_id: "65",
};

function gatewayEvent(fields: Partial<AuditEvent>): AuditEvent {
  return {
    event: "gateway.request",
    request_id: "r-1",
    decision: "allow",
    reason: "allowed-by-policy",
    client_ip: "127.0.0.1",
    method: "GET",
    host: "gateway.internal",
    path: "/artifacts/a.zip",
    route: "artifacts",
    token_sha256: "a".repeat(64),
    token_cached: true,
    identity,
    policy: "ci",
    upstream: "http://127.0.0.1:9000",
    status: 200,
    bytes_in: 0,
    bytes_out: 64,
    duration_ms: 3,
    ...fields,
  };
}

/** Encodes the events one after the other and returns the text, checking each take on the way. */
function encodeAll(events: readonly AuditEvent[], blockBytes?: number, redactor = createRedactor()): string {
  const encoder = createAuditLineEncoder({ redactor, blockBytes });
  let text = "";
  const takeAll = () => {
    const pending = encoder.pendingBytes;
    const bytes = encoder.take();
    expect(bytes?.length ?? 0).toBe(pending);
    text += bytes?.toString("utf8") ?? "";
  };
  events.forEach((event, index) => {
    encoder.append(Date.UTC(2026, 0, 2, 3, 4, 5, index % 3), event);
    // Take every few lines, so runs are copied both from taken and from pending bytes.
    if (index % 4 === 3) takeAll();
  });
  takeAll();
  expect(encoder.pendingBytes).toBe(0);
  expect(encoder.take()).toBeUndefined();
  return text;
}

function referenceAll(events: readonly AuditEvent[]): string {
  return events.map((event, index) => reference(Date.UTC(2026, 0, 2, 3, 4, 5, index % 3), event)).join("");
}

/** A stream of lines where members change, vanish and come back, as requests of several callers do. */
function mixedEvents(): AuditEvent[] {
  const events: AuditEvent[] = [];
  for (let i = 0; i < 60; i++) {
    events.push(
      gatewayEvent({
        request_id: `r-${i}`,
        duration_ms: i % 4,
        status: i % 7 === 0 ? 502 : 200,
        route: i % 5 === 0 ? "other" : "artifacts",
        identity: i % 9 === 0 ? { ...identity, repository: "octo-org/other" } : identity,
        detail: i % 6 === 0 ? `upstream failed [${i}]` : undefined,
        path: i % 8 === 0 ? `/artifacts/${i}?q=${"x".repeat(i)}` : "/artifacts/a.zip",
      }),
    );
    if (i % 10 === 0)
      events.push({
        event: "auth.denied",
        request_id: `d-${i}`,
        decision: "deny",
        reason: "TG_TOKEN_EXPIRED",
      });
  }
  return events;
}

describe("createAuditLineEncoder", () => {
  it("writes exactly the bytes JSON.stringify would, members in order and identity last", () => {
    const events = mixedEvents();
    expect(encodeAll(events)).toBe(referenceAll(events));
  });

  it("stays exact when lines cross block boundaries (blocks smaller than a line)", () => {
    const events = mixedEvents();
    for (const blockBytes of [64, 300, 1_000, 4_096]) {
      expect(encodeAll(events, blockBytes), `block of ${blockBytes}`).toBe(referenceAll(events));
    }
  });

  it("escapes what JSON must escape, and keeps non-ASCII text as UTF-8", () => {
    const awkward = [
      'quote " and backslash \\',
      "control \u0000\u0001\n\t\u001f and delete \u007f",
      "é, 東京, emoji 🚀",
      "lone surrogate \ud800 here",
      "",
    ];
    const events = awkward.map((detail, i) => gatewayEvent({ request_id: `r-${i}`, detail, host: detail }));
    const text = encodeAll(events);
    expect(text).toBe(referenceAll(events));
    expect(
      text
        .trimEnd()
        .split("\n")
        .map((line) => (JSON.parse(line) as AuditEvent).detail),
    ).toEqual(awkward);
  });

  it("serialises numbers, booleans and denial conditions as JSON does, and leaves out functions", () => {
    const conditions = [
      {
        policy: "ci",
        claim: "ref",
        expected: '"refs/heads/main"',
        found: null,
        ok: false,
        reason: "claim-missing" as const,
      },
    ];
    const odd = gatewayEvent({ duration_ms: Number.NaN, bytes_out: 1.5, token_cached: false, conditions });
    (odd as unknown as { callback: unknown }).callback = () => 1;
    const events = [odd, { ...odd, duration_ms: Number.POSITIVE_INFINITY }, odd];
    expect(encodeAll(events)).toBe(referenceAll(events));
  });

  it("appends nothing for an event it cannot serialise, and the next line is whole", () => {
    const redactor = createRedactor();
    const encoder = createAuditLineEncoder({ redactor, blockBytes: 256 });
    encoder.append(0, gatewayEvent({ request_id: "before" }));
    const bad = gatewayEvent({ request_id: "bad", route: "x".repeat(400) }) as AuditEvent & { extra: bigint };
    bad.extra = 1n;
    expect(() => encoder.append(0, bad)).toThrow(TypeError);
    encoder.append(0, gatewayEvent({ request_id: "after" }));
    const lines = encoder.take()!.toString("utf8").trimEnd().split("\n");
    expect(lines.map((line) => (JSON.parse(line) as AuditEvent).request_id)).toEqual(["before", "after"]);
  });

  it("never hands out bytes twice, and never changes bytes it handed out", () => {
    const encoder = createAuditLineEncoder({ redactor: createRedactor(), blockBytes: 512 });
    const taken: { bytes: Buffer; copy: string }[] = [];
    for (let i = 0; i < 50; i++) {
      encoder.append(0, gatewayEvent({ request_id: `r-${i}` }));
      if (i % 3 === 0) {
        const bytes = encoder.take()!;
        taken.push({ bytes, copy: bytes.toString("utf8") });
      }
    }
    expect(encoder.take()?.length).toBeGreaterThan(0);
    expect(encoder.take()).toBeUndefined();
    for (const { bytes, copy } of taken) expect(bytes.toString("utf8")).toBe(copy);
    const ids = taken.flatMap(({ copy }) =>
      copy
        .trimEnd()
        .split("\n")
        .map((line) => (JSON.parse(line) as AuditEvent).request_id),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("redacts a number whose digits are a registered secret, and the line stays JSON", () => {
    const digits = String(10_000_000_000 + Math.floor(Math.random() * 1e9));
    const leaky = gatewayEvent({ bytes_out: Number(digits) });
    // Deny twin: not a secret, so the number is written as a number.
    expect(JSON.parse(encodeAll([leaky]))).toMatchObject({ bytes_out: Number(digits) });
    const redactor = createRedactor();
    redactor.register(digits);
    const text = encodeAll([leaky], undefined, redactor);
    expect(text).not.toContain(digits);
    expect(JSON.parse(text)).toMatchObject({ bytes_out: "[REDACTED]" });
  });

  it("redacts a secret registered after a line carried it: repeated values are not copied past a new secret", () => {
    const canary = `tgcanary${randomBytes(12).toString("hex")}`;
    const redactor = createRedactor();
    const encoder = createAuditLineEncoder({ redactor });
    const leaky = gatewayEvent({ path: `/p?token=${canary}`, identity: { ...identity, actor: canary } });
    encoder.append(0, leaky);
    // Not yet a secret: written as it is (the deny twin of the next line).
    expect(encoder.take()!.toString("utf8")).toContain(canary);
    redactor.register(canary);
    encoder.append(0, leaky);
    const text = encoder.take()!.toString("utf8");
    expect(text).not.toContain(canary);
    expect(JSON.parse(text)).toMatchObject({
      path: "/p?token=[REDACTED]",
      identity: { actor: "[REDACTED]" },
    });
  });
});
