import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import type { PathSegments } from "./config-path.js";

/**
 * Finds where a configuration path is written in the YAML document: the 1-based line of the deepest
 * existing node along the path (for a mapping entry, the line of its key). A path that goes beyond what
 * is written (a missing key) lands on its nearest existing parent, which is where the key must be added.
 */
export function lineOfPath(doc: Document, lineCounter: LineCounter, path: PathSegments): number | undefined {
  let node: unknown = doc.contents;
  let line = lineAt(node, lineCounter);
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((item) => keyText(item.key) === String(segment));
      if (pair === undefined) break;
      line = lineAt(pair.key, lineCounter) ?? lineAt(pair.value, lineCounter) ?? line;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment];
      if (item === undefined) break;
      line = lineAt(item, lineCounter) ?? line;
      node = item;
    } else {
      break;
    }
  }
  return line;
}

/** The configuration path of the deepest mapping key or sequence item containing a character offset. */
export function pathAtOffset(doc: Document, offset: number): (string | number)[] {
  const path: (string | number)[] = [];
  let node: unknown = doc.contents;
  for (let depth = 0; depth < 100; depth++) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && (contains(item.key, offset) || contains(item.value, offset)),
      );
      if (pair === undefined) break;
      path.push(keyText(pair.key));
      if (!contains(pair.value, offset)) break;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => contains(item, offset));
      if (index < 0) break;
      path.push(index);
      node = node.items[index];
    } else {
      break;
    }
  }
  return path;
}

function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

function rangeOf(node: unknown): [number, number, number] | undefined {
  const range = (node as Node | null | undefined)?.range;
  return Array.isArray(range) ? range : undefined;
}

function contains(node: unknown, offset: number): boolean {
  const range = rangeOf(node);
  return range !== undefined && range[0] <= offset && offset < Math.max(range[1], range[0] + 1);
}

function lineAt(node: unknown, lineCounter: LineCounter): number | undefined {
  const range = rangeOf(node);
  return range === undefined ? undefined : lineCounter.linePos(range[0]).line;
}
