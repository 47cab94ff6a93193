import { readFileSync } from "node:fs";

/** The state the main step saves and the post step reads back as `STATE_pid`, `STATE_log`. */
export const stateNames = { pid: "pid", log: "log" } as const;

/** The background process's log in a collapsible group (it never contains a token). */
export function logSection(logFile: string): string {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return "";
  }
  if (text.length === 0) return "";
  return `::group::tollgate log\n${text}${text.endsWith("\n") ? "" : "\n"}::endgroup::\n`;
}
