// action/src/state.ts
import { readFileSync } from "node:fs";
var stateNames = { pid: "pid", log: "log" };
function logSection(logFile) {
  let text;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return "";
  }
  if (text.length === 0) return "";
  return `::group::tollgate log
${text}${text.endsWith("\n") ? "" : "\n"}::endgroup::
`;
}

export {
  stateNames,
  logSection
};
