// Dependencies point one way (docs/architecture.md): no two folders of src/ may import each other, directly
// or around a longer loop, and no file may import itself back through other files. Type-only imports count
// too — a cycle of types is still a cycle a reader has to untangle. Run by `npm run lint`; exits 1 and
// names every cycle, with the imports that make it, when there is one.
//
// A small script rather than madge or dependency-cruiser: the rule is two lines of graph theory over
// relative import specifiers, which TypeScript's own scanner reads for us (no regex over source text).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

// The folder to check: src/ of this repository, or the one given (the script's own test uses a scratch tree).
const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", "src"));

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The relative imports and re-exports of one file, resolved to the `.ts` files they name. */
function importsOf(file) {
  const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  return info.importedFiles
    .map((reference) => reference.fileName)
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => resolve(dirname(file), specifier).replace(/\.js$/, ".ts"));
}

const folderOf = (file) => relative(root, file).split(sep)[0];
const files = sourceFiles(root);
const fileEdges = new Map(files.map((file) => [file, importsOf(file)]));
const folderEdges = new Map();
for (const [file, targets] of fileEdges) {
  for (const target of targets) {
    const from = folderOf(file);
    const to = folderOf(target);
    // Files directly in the root (none in src/ today) belong to no folder.
    if (from === to || from === relative(root, file)) continue;
    if (!folderEdges.has(from)) folderEdges.set(from, new Map());
    const why = folderEdges.get(from);
    if (!why.has(to)) why.set(to, `${relative(root, file)} → ${relative(root, target)}`);
  }
}

/** Strongly connected components with more than one node (Tarjan): each is a cycle. */
function cycles(nodes, next) {
  let index = 0;
  const stack = [];
  const state = new Map();
  const found = [];
  const visit = (node) => {
    state.set(node, { index, low: index, onStack: true });
    index += 1;
    stack.push(node);
    for (const target of next(node)) {
      if (!state.has(target)) {
        visit(target);
        state.get(node).low = Math.min(state.get(node).low, state.get(target).low);
      } else if (state.get(target).onStack) {
        state.get(node).low = Math.min(state.get(node).low, state.get(target).index);
      }
    }
    if (state.get(node).low === state.get(node).index) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        state.get(member).onStack = false;
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || next(node).includes(node)) found.push(component.reverse());
    }
  };
  for (const node of nodes) if (!state.has(node)) visit(node);
  return found;
}

const problems = [];
const folders = [...new Set(files.map(folderOf))];
for (const component of cycles(folders, (folder) => [...(folderEdges.get(folder)?.keys() ?? [])])) {
  const inside = new Set(component);
  const edges = component.flatMap((from) =>
    [...(folderEdges.get(from) ?? [])].filter(([to]) => inside.has(to)).map(([, why]) => `    ${why}`),
  );
  problems.push(`folders import each other: ${component.join(" ↔ ")}\n${edges.join("\n")}`);
}
for (const component of cycles(files, (file) => fileEdges.get(file) ?? [])) {
  problems.push(`files import each other: ${component.map((file) => relative(root, file)).join(" → ")}`);
}

if (problems.length > 0) {
  console.error(
    `import cycles in src/ (dependencies must point one way, docs/architecture.md):\n${problems.join("\n")}`,
  );
  process.exit(1);
}
console.log(
  `no import cycles: ${files.length} files in ${folders.length} folders of ${relative(process.cwd(), root) || "."}`,
);
