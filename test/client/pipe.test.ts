import { createServer, type Server, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { parsePipeDestination } from "../../src/client/index.js";
import { closeServer, jwtsIn, listenLoopback, startTunnelSetup, type TunnelSetup } from "./client-harness.js";

// `tollgate pipe` in-process (main with its own stdin and stdout) through a real gateway to a TCP server
// that answers once its client has finished sending: the end of standard input must reach it.
let setup: TunnelSetup;
let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () =>
      socket.end(`got ${Buffer.concat(chunks).length} bytes: ${Buffer.concat(chunks).subarray(0, 5)}`),
    );
  });
  port = await listenLoopback(server);
  setup = await startTunnelSetup([`127.0.0.1:${port}`]);
});

afterAll(async () => {
  await setup?.close();
  if (server) await closeServer(server);
});

/** Runs `tollgate pipe …` in-process with `input` as standard input; resolves with code and output. */
async function pipe(args: string[], input: string) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: string[] = [];
  stdout.on("data", (chunk: Buffer) => out.push(chunk));
  stderr.on("data", (chunk: Buffer) => err.push(chunk.toString()));
  stdin.end(input);
  const code = await main(["pipe", ...args], { stdin, stdout, stderr, env: setup.clientEnv() });
  return { code, stdout: Buffer.concat(out).toString(), stderr: err.join("") };
}

describe("tollgate pipe", () => {
  it("carries standard input to the destination, passes its end on, and writes only the answer to stdout", async () => {
    const result = await pipe(
      [`127.0.0.1:${port}`, "--gateway", setup.gateway.url, "--audience", "tollgate.test"],
      "hello through one tunnel",
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("got 24 bytes: hello");
  });

  it("reads --gateway and --audience from TOLLGATE_GATEWAY and TOLLGATE_AUDIENCE", async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const text: string[] = [];
    stdout.on("data", (chunk: Buffer) => text.push(chunk.toString()));
    stdin.end("x");
    const code = await main(["pipe", `127.0.0.1:${port}`], {
      stdin,
      stdout,
      stderr: new PassThrough(),
      env: setup.clientEnv({ TOLLGATE_GATEWAY: setup.gateway.url, TOLLGATE_AUDIENCE: "tollgate.test" }),
    });
    expect(code).toBe(0);
    expect(text.join("")).toBe("got 1 bytes: x");
  });

  it("a destination no tunnel lists: exit 1, nothing on stdout, the code and request_id on stderr", async () => {
    const result = await pipe(
      [`127.0.0.1:${port + 1}`, "--gateway", setup.gateway.url, "--audience", "tollgate.test"],
      "never sent",
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      new RegExp(
        `^tollgate pipe: 127\\.0\\.0\\.1:${port + 1}: gateway answered 403 TG_TUNNEL_DESTINATION_FORBIDDEN \\(request_id [0-9a-f-]{36}\\)\\n$`,
      ),
    );
  });

  it("a wrong audience: exit 1 with the 407 and why the gateway refused the token", async () => {
    const result = await pipe(
      [`127.0.0.1:${port}`, "--gateway", setup.gateway.url, "--audience", "other"],
      "x",
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("gateway answered 407 TG_PROXY_AUTH_INVALID");
    expect(result.stderr).toContain(
      'TG_TOKEN_AUDIENCE_MISMATCH: the gateway refused this job\'s token for audience "other"',
    );
    expect(jwtsIn(result.stderr)).toEqual([]);
  });

  it("a malformed destination or gateway URL: exit 2 before any token is fetched", async () => {
    const before = setup.tokenEndpoint.audiences.length;
    const noPort = await pipe(["git.internal", "--gateway", setup.gateway.url, "--audience", "a"], "");
    expect(noPort.code).toBe(2);
    expect(noPort.stderr).toContain("expected HOST:PORT");
    const badUrl = await pipe([`127.0.0.1:${port}`, "--gateway", "ftp://gw", "--audience", "a"], "");
    expect(badUrl.code).toBe(2);
    expect(setup.tokenEndpoint.audiences.length).toBe(before);
  });
});

describe("parsePipeDestination", () => {
  it.each([
    ["git.internal:22", "git.internal:22"],
    ["10.0.0.5:5432", "10.0.0.5:5432"],
    ["[fd00::5]:22", "[fd00::5]:22"],
    // ssh's %h:%p for `ssh fd00::5`: the address without brackets.
    ["fd00::5:22", "[fd00::5]:22"],
    ["::1:2222", "[::1]:2222"],
  ])("reads %s as %s", (text, expected) => {
    expect(parsePipeDestination(text)).toBe(expected);
  });

  it.each([
    ["git.internal"],
    ["git.internal:0"],
    ["git.internal:65536"],
    ["a b:22"],
    [":22"],
    ["[::1]"],
    ["fd00::zz:22"],
  ])("refuses %s", (text) => {
    expect(() => parsePipeDestination(text)).toThrow(/expected HOST:PORT/);
  });
});
