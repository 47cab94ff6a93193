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
