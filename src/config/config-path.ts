/** A location in the configuration: object keys and array indices, from the root. */
export type PathSegments = readonly (string | number)[];

/**
 * Renders a path the way problems and warnings print it, and the way `policy/` writes its paths:
 * `routes[0].upstream`, `policies.org-ci.claims.ref`, and `["…"]` for keys that are not plain words.
 *
 * @example
 * formatPath(["routes", 0, "upstream"]); // "routes[0].upstream"
 * formatPath(["policies", "a.b", "claims"]); // 'policies["a.b"].claims'
 */
export function formatPath(path: PathSegments): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment) || (text === "" && /^\$[A-Z0-9_]+$/.test(segment))) {
      // `$NAME` is an environment variable (`$PORT`), which has no place in the file.
      text += text === "" ? segment : `.${segment}`;
    } else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

/**
 * Parses a path written by {@link formatPath} (or by `policy/`) back into segments. Returns what could be
 * read when the text is not in that form, so a line can still be found for its known part.
 */
export function parsePath(text: string): (string | number)[] {
  const segments: (string | number)[] = [];
  const token = /\.?(\$?[A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  let match: RegExpExecArray | null = token.exec(text);
  while (match !== null) {
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(Number(match[2]));
    else segments.push(JSON.parse(match[3]!) as string);
    if (token.lastIndex >= text.length) break;
    match = token.exec(text);
  }
  return segments;
}
