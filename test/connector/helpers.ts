import { PassThrough } from "node:stream";
import pino from "pino";
import { parseDestinationPattern } from "../../src/tunnel/index.js";
import type { DestinationPattern } from "../../src/tunnel/types.js";

/** Destination patterns as `--allow` takes them, for a connector started in-process. */
export function patterns(...texts: string[]): DestinationPattern[] {
  return texts.map((text) => {
    const parsed = parseDestinationPattern(text);
    if (!("pattern" in parsed)) throw new Error(`bad pattern ${text}`);
    return parsed.pattern;
  });
}

/** A pino logger writing to memory, and its lines parsed (a connector's log, in-process). */
export function capturedLogger(): {
  logger: pino.Logger;
  text: () => string;
  lines: () => Record<string, unknown>[];
} {
  const chunks: Buffer[] = [];
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  const text = () => Buffer.concat(chunks).toString("utf8");
  return {
    logger: pino(stream),
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/**
 * Every form a leaked token could take in a log (CONTRIBUTING: raw, base64, base64url, URL-encoded), and
 * its signature alone, for `expect(output).not.toContain(form)`.
 */
export function tokenForms(token: string): string[] {
  return [
    token,
    token.split(".")[2]!,
    Buffer.from(token).toString("base64"),
    Buffer.from(token).toString("base64url"),
    encodeURIComponent(token),
  ];
}
