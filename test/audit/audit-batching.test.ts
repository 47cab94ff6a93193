import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLog, createRedactor } from "../../src/audit/index.js";
import type { AuditEvent } from "../../src/audit/types.js";

// The audit log writes in batches bounded by time and size. These tests read the real file the sink
// writes, so they see what an operator tailing it would see, and when.

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "tollgate-audit-batching-"));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

function event(index: number, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    event: "gateway.request",
    request_id: `request-${index}`,
    decision: "allow",
    reason: "allowed-by-policy",
    ...extra,
  };
}

async function linesOf(path: string): Promise<string[]> {
  try {
    const text = await readFile(path, "utf8");
    return text === "" ? [] : text.trimEnd().split("\n");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** Polls the file until it has `count` lines or `withinMs` passed; returns the lines and when they came. */
async function waitForLines(path: string, count: number, withinMs: number) {
  const started = performance.now();
  for (;;) {
    const lines = await linesOf(path);
    const waitedMs = performance.now() - started;
    if (lines.length >= count || waitedMs > withinMs) return { lines, waitedMs };
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An audit log writing to `file` in the test folder, with the given batching. */
function auditTo(file: string, batching: { flushIntervalMs?: number; flushBytes?: number } = {}) {
  const sink = join(folder, file);
  return { sink, audit: createAuditLog({ sink, redactor: createRedactor(), ...batching }) };
}

/** 100 lines of ≈ 200 bytes each: ≈ 20 KB in all. */
function emitLongLines(audit: ReturnType<typeof createAuditLog>): void {
  for (let i = 0; i < 100; i++) audit.emit(event(i, { path: `/${"p".repeat(100)}` }));
}

// Intervals are seconds long and the "not yet" checks come within a tenth of one, so a busy CI machine
// cannot turn a held batch into an early one.
describe("audit log batching", () => {
  it("holds lines for the flush interval, then writes them all, in order, as whole lines", async () => {
    const { sink, audit } = auditTo("interval.jsonl", { flushIntervalMs: 2_000 });
    for (let i = 0; i < 50; i++) audit.emit(event(i));
    // Well inside the interval nothing has been written yet: the lines are batched, not written per turn.
    await sleep(100);
    expect(await linesOf(sink)).toEqual([]);
    const { lines } = await waitForLines(sink, 50, 10_000);
    expect(lines.map((line) => (JSON.parse(line) as AuditEvent).request_id)).toEqual(
      Array.from({ length: 50 }, (_, i) => `request-${i}`),
    );
    await audit.flush();
  });

  it("writes at once when a batch reaches the size bound, long before the interval", async () => {
    const { sink, audit } = auditTo("size.jsonl", { flushIntervalMs: 60_000, flushBytes: 4_096 });
    emitLongLines(audit);
    // Without the size bound these lines would wait a minute; the test gives them five seconds. Each
    // batch goes out as it reaches 4 KiB (≈ 20 lines), whole lines only; what is left is under the bound
    // and waits.
    await waitForLines(sink, 75, 5_000);
    await sleep(200); // let the writes already handed to the sink land
    const early = await linesOf(sink);
    expect(early.map((line) => (JSON.parse(line) as AuditEvent).request_id)).toEqual(
      Array.from({ length: early.length }, (_, i) => `request-${i}`),
    );
    await audit.flush();
    const all = await linesOf(sink);
    expect(all).toHaveLength(100);
    const leftBytes = all.slice(early.length).reduce((sum, line) => sum + line.length + 1, 0);
    expect(leftBytes).toBeLessThan(4_096);
  });

  it("deny twin of the size bound: a batch under it waits for the interval", async () => {
    const { sink, audit } = auditTo("under-size.jsonl", { flushIntervalMs: 2_000, flushBytes: 1_000_000 });
    emitLongLines(audit);
    await sleep(100);
    expect(await linesOf(sink)).toEqual([]);
    expect((await waitForLines(sink, 100, 10_000)).lines).toHaveLength(100);
    await audit.flush();
  });

  it("flush() straight after creation, before the file is even open, resolves (a stop during start)", async () => {
    // sonic-boom used to throw from its open callback here, ending the process (see audit-log.ts).
    const empty = auditTo("new/empty.jsonl");
    await empty.audit.flush();
    expect(await linesOf(empty.sink)).toEqual([]);
    const one = auditTo("new/one.jsonl", { flushIntervalMs: 60_000 });
    one.audit.emit(event(0));
    await one.audit.flush();
    expect(await linesOf(one.sink)).toHaveLength(1);
  });

  it("flush() writes what is pending without waiting for the interval (graceful stop)", async () => {
    const { sink, audit } = auditTo("flush.jsonl", { flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) audit.emit(event(i));
    await audit.flush();
    // A minute-long interval has not passed: only flush() can have written these.
    expect(await linesOf(sink)).toHaveLength(10);
  });

  it("with flushIntervalMs 0 writes every event-loop turn", async () => {
    const { sink, audit } = auditTo("every-turn.jsonl", { flushIntervalMs: 0 });
    audit.emit(event(1));
    expect((await waitForLines(sink, 1, 5_000)).lines).toHaveLength(1);
    await audit.flush();
  });
});
