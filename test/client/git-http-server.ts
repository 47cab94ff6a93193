import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { listenLoopback } from "./client-harness.js";

const run = promisify(execFile);

/** Environment for every git command of the tests: no user or system configuration, no prompts. */
export function gitEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "tollgate test",
    GIT_AUTHOR_EMAIL: "test@tollgate.invalid",
    GIT_COMMITTER_NAME: "tollgate test",
    GIT_COMMITTER_EMAIL: "test@tollgate.invalid",
    ...extra,
  };
}

/** A bare repository with one commit (`README.md` holding `content`) under `<root>/repo.git`. */
export async function createBareRepository(
  content: string,
): Promise<{ root: string; close(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "tollgate-git-"));
  const env = gitEnv(root);
  const work = join(root, "work");
  await mkdir(work);
  await run("git", ["init", "-q", "-b", "main", work], { env });
  await writeFile(join(work, "README.md"), content);
  await run("git", ["-C", work, "add", "README.md"], { env });
  await run("git", ["-C", work, "commit", "-q", "-m", "initial"], { env });
  await run("git", ["clone", "-q", "--bare", work, join(root, "repo.git")], { env });
  return { root, close: () => rm(root, { recursive: true, force: true }) };
}

/**
 * Serves the repositories under `projectRoot` with `git http-backend` run as a CGI program for each
 * request (git's smart HTTP protocol), over http or, with a certificate, https.
 */
export async function startGitHttpServer(
  projectRoot: string,
  tls?: { certPem: string; keyPem: string },
): Promise<{ port: number; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? "/", "http://git.invalid");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        ...gitEnv(projectRoot),
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        GATEWAY_INTERFACE: "CGI/1.1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_ADDR: req.socket.remoteAddress ?? "",
        ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
        ...(req.headers["content-encoding"]
          ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] }
          : {}),
        ...(typeof req.headers["git-protocol"] === "string"
          ? { GIT_PROTOCOL: req.headers["git-protocol"] }
          : {}),
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    req.pipe(cgi.stdin);
    let buffered = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      const endLf = buffered.indexOf("\n\n");
      const [split, gap] = end !== -1 && (endLf === -1 || end < endLf) ? [end, 4] : [endLf, 2];
      if (split === -1) return;
      headersDone = true;
      let status = 200;
      for (const line of buffered.subarray(0, split).toString("latin1").split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon === -1) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(buffered.subarray(split + gap));
    });
    cgi.on("close", () => res.end());
    cgi.on("error", () => res.destroy());
  };
  const server: Server = tls
    ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, handler)
    : createHttpServer(handler);
  const port = await listenLoopback(server);
  return {
    port,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
