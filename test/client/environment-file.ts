/** Reads an environment file the way the runner does (`name<<DELIMITER` … `DELIMITER`, or `name=value`). */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const value: string[] = [];
      for (index += 1; lines[index] !== heredoc[2]; index += 1) {
        if (index >= lines.length) throw new Error(`unterminated value for ${heredoc[1]}`);
        value.push(lines[index]!);
      }
      result[heredoc[1]!] = value.join("\n");
    } else if (line.includes("=")) {
      result[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
    }
  }
  return result;
}
