/**
 * Parses a human duration such as `500ms`, `30s`, `10m`, `1h` or `1h30m` into milliseconds.
 * Returns `undefined` for anything else, so the config validator can report the value with its path.
 *
 * @example
 * parseDuration("1m30s"); // 90_000
 */
export function parseDuration(text: string): number | undefined {
  const whole = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
  if (!whole.test(text)) return undefined;
  let total = 0;
  for (const part of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(part[1]) * unitMs[part[2] as keyof typeof unitMs];
  }
  return Math.round(total);
}

const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * An optional configured duration in milliseconds, or `fallback` when it was left out (the schema has
 * already refused text that does not parse).
 *
 * @example
 * durationOr(undefined, 600_000); // 600000
 * durationOr("30s", 600_000); // 30000
 */
export function durationOr(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : (parseDuration(text) ?? fallback);
}

/** Formats milliseconds back to the shortest duration text (`90000` → `1m30s`), for messages. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, seconds] of [
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const count = Math.floor(rest / seconds);
    if (count > 0) parts.push(`${count}${unit}`);
    rest -= count * seconds;
  }
  return parts.join("");
}
