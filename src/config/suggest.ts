/**
 * The closest candidate to a mistyped word, for "did you mean" hints, or `undefined` when nothing is close.
 * Case, `_` and `-` are ignored first (`pathPrefix`, `path-prefix` → `path_prefix`); otherwise the edit
 * distance must be small relative to the word's length, so unrelated keys are not suggested.
 *
 * @example
 * closestMatch("listne", ["listen", "issuers"]); // "listen"
 * closestMatch("colour", ["listen", "issuers"]); // undefined
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const folded = fold(word);
  const sameFolded = candidates.find((candidate) => fold(candidate) === folded);
  if (sameFolded !== undefined) return sameFolded;
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(folded, fold(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function fold(word: string): string {
  return word.toLowerCase().replace(/[_-]/g, "");
}

/** Levenshtein distance with adjacent transpositions counted as one edit (`hsot` → `host`). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        value = Math.min(value, d[i - 2]![j - 2]! + 1);
      d[i]![j] = value;
    }
  }
  return d[a.length]![b.length]!;
}
