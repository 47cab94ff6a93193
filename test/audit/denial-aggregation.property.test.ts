import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLog, createRedactor } from "../../src/audit/index.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { propertySettings } from "../helpers/property.js";

/**
 * Issue 12, class 7: a flood of denials must not grow the audit log at the rate it arrives. Repeated
 * denials from one source (address, reason, route or tunnel, event type, verified token) in a window are
 * one whole line plus one counted line; sources beyond `maxSources` are counted without addresses. The
 * properties: the lines of a window are bounded whatever the flood, and no denial is lost from the count.
 */

let folder: string;
let files = 0;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "tollgate-denials-"));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

type Line = AuditEvent & { time: string };

async function linesOf(path: string): Promise<Line[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Line);
}

const reasons = ["TG_TOKEN_MISSING", "TG_TOKEN_INVALID", "TG_POLICY_DENIED", "TG_ROUTE_NOT_FOUND"] as const;
const eventNames = ["gateway.request", "auth.denied", "tunnel.open"] as const;

/** One decision of a flood: who, why, where; verified callers carry an identity and their token's hash. */
const decision = fc.record({
  client: fc.integer({ min: 0, max: 40 }),
  reason: fc.constantFrom(...reasons),
  event: fc.constantFrom(...eventNames),
  route: fc.constantFrom(undefined, "artifacts", "deploy"),
  verifiedCaller: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  allowed: fc.boolean(),
});

function eventOf(
  input: typeof decision extends fc.Arbitrary<infer T> ? T : never,
  index: number,
): AuditEvent {
  const event: AuditEvent = {
    event: input.allowed ? "gateway.request" : input.event,
    request_id: `r-${index}`,
    decision: input.allowed ? "allow" : "deny",
    reason: input.allowed ? "allowed-by-policy" : input.reason,
    client_ip: `198.51.100.${input.client}`,
    path: `/artifacts/${index}`,
  };
  if (input.route !== undefined) event.route = input.route;
  if (input.verifiedCaller !== undefined) {
    event.identity = { repository: `octo-org/repo-${input.verifiedCaller}` };
    event.token_sha256 = String(input.verifiedCaller).repeat(64);
  }
  return event;
}

describe("denial aggregation (property)", () => {
  // In one window the audit log writes at most 2 × max_sources denial lines plus one per event type and reason, whatever the flood.
  it("bounds the denial lines of a window", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(decision, { minLength: 1, maxLength: 400, size: "max" }),
        fc.integer({ min: 1, max: 12 }),
        async (flood, maxSources) => {
          const sink = join(folder, `bound-${files++}.jsonl`);
          const audit = createAuditLog({
            sink,
            redactor: createRedactor(),
            denials: { windowMs: 60_000, maxSources },
          });
          for (const [index, input] of flood.entries()) audit.emit(eventOf(input, index));
          await audit.flush();
          const lines = await linesOf(sink);
          const denialLines = lines.filter((line) => line.decision === "deny");
          expect(denialLines.length).toBeLessThanOrEqual(2 * maxSources + eventNames.length * reasons.length);
          // Allowed requests are never folded.
          expect(lines.filter((line) => line.decision === "allow").length).toBe(
            flood.filter((input) => input.allowed).length,
          );
        },
      ),
      propertySettings(150),
    );
  });

  // Every denial is accounted for: the whole lines plus the `repeated` counts add up to the denials emitted, per event type and reason.
  it("loses no denial from the count", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(decision, { minLength: 1, maxLength: 300, size: "max" }),
        fc.integer({ min: 1, max: 50 }),
        async (flood, maxSources) => {
          const sink = join(folder, `count-${files++}.jsonl`);
          const audit = createAuditLog({
            sink,
            redactor: createRedactor(),
            denials: { windowMs: 60_000, maxSources },
          });
          const events = flood.map(eventOf);
          for (const event of events) audit.emit(event);
          await audit.flush();
          const counted = new Map<string, number>();
          for (const line of await linesOf(sink)) {
            if (line.decision !== "deny") continue;
            const key = `${line.event} ${line.reason}`;
            counted.set(key, (counted.get(key) ?? 0) + (line.repeated ?? 1));
          }
          const emitted = new Map<string, number>();
          for (const event of events) {
            if (event.decision !== "deny") continue;
            const key = `${event.event} ${event.reason}`;
            emitted.set(key, (emitted.get(key) ?? 0) + 1);
          }
          expect(counted).toEqual(emitted);
        },
      ),
      propertySettings(150),
    );
  });

  // Within the sources followed, each source's first denial is written whole, and two verified callers are never folded into one line.
  it("writes each source's first denial whole and keeps verified callers apart", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(decision, { minLength: 1, maxLength: 200, size: "max" }), async (flood) => {
        const sink = join(folder, `first-${files++}.jsonl`);
        const audit = createAuditLog({
          sink,
          redactor: createRedactor(),
          denials: { windowMs: 60_000, maxSources: 10_000 },
        });
        const events = flood.map(eventOf);
        for (const event of events) audit.emit(event);
        await audit.flush();
        const written = new Set(
          (await linesOf(sink)).filter((line) => line.repeated === undefined).map((line) => line.request_id),
        );
        const firstOfSource = new Map<string, string>();
        for (const event of events) {
          if (event.decision !== "deny") continue;
          const source = JSON.stringify([
            event.event,
            event.client_ip,
            event.reason,
            event.route,
            event.identity?.repository,
          ]);
          if (!firstOfSource.has(source)) firstOfSource.set(source, event.request_id);
        }
        for (const requestId of firstOfSource.values()) expect(written.has(requestId)).toBe(true);
        for (const line of await linesOf(sink)) {
          if (line.repeated === undefined) continue;
          // A counted line names one caller at most: the identity of the source it counts.
          const source = events.find((event) => event.request_id === line.request_id)!;
          expect(line.identity).toEqual(source.identity);
          expect(line.client_ip).toBe(source.client_ip);
        }
      }),
      propertySettings(100),
    );
  });
});

describe("denial aggregation over time", () => {
  it("starts a new window: a source denied again after the window gets a whole line again, and the counted line comes at the window's end", async () => {
    const sink = join(folder, "windows.jsonl");
    const audit = createAuditLog({
      sink,
      redactor: createRedactor(),
      flushIntervalMs: 0,
      denials: { windowMs: 300, maxSources: 8 },
    });
    const denial = (index: number): AuditEvent => ({
      event: "auth.denied",
      request_id: `r-${index}`,
      decision: "deny",
      reason: "TG_TOKEN_INVALID",
      client_ip: "203.0.113.9",
    });
    for (let i = 0; i < 50; i++) audit.emit(denial(i));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Mid-window: only the first denial is written.
    expect((await linesOf(sink)).map((line) => line.request_id)).toEqual(["r-0"]);
    await new Promise((resolve) => setTimeout(resolve, 450));
    audit.emit(denial(50));
    await audit.flush();
    const lines = await linesOf(sink);
    expect(lines.map((line) => [line.request_id, line.repeated])).toEqual([
      ["r-0", undefined],
      ["r-49", 49],
      ["r-50", undefined],
    ]);
    expect(lines[1]).toMatchObject({ event: "auth.denied", client_ip: "203.0.113.9", window_ms: 300 });
  });

  it("the twin: window 0 writes every denial on its own line", async () => {
    const sink = join(folder, "every.jsonl");
    const audit = createAuditLog({
      sink,
      redactor: createRedactor(),
      denials: { windowMs: 0, maxSources: 1 },
    });
    for (let i = 0; i < 20; i++) {
      audit.emit({
        event: "auth.denied",
        request_id: `r-${i}`,
        decision: "deny",
        reason: "TG_TOKEN_INVALID",
        client_ip: "203.0.113.9",
      });
    }
    await audit.flush();
    expect(await linesOf(sink)).toHaveLength(20);
  });
});
