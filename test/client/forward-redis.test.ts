import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliProcess,
  freePort,
  jwtsIn,
  runTool,
  startCli,
  startTunnelSetup,
  type TunnelSetup,
} from "./client-harness.js";

// redis-cli (a client that cannot use a proxy) through `tollgate forward`, to a redis-server started here.
let redis: ChildProcess;
let redisPort: number;
let otherPort: number;
let setup: TunnelSetup;
let forward: CliProcess;

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
    ],
    { stdio: "ignore" },
  );
  const env = { PATH: process.env.PATH ?? "" };
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const ping = await runTool("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "PING"], env);
    if (ping.stdout.trim() === "PONG") return child;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill("SIGKILL");
  throw new Error("redis-server did not start (is the redis-server package installed? .ci/run installs it)");
}

beforeAll(async () => {
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  otherPort = await freePort();
  setup = await startTunnelSetup([`127.0.0.1:${redisPort}`]);
  forward = await startCli(
    [
      "forward",
      `0:127.0.0.1:${redisPort}`,
      `127.0.0.1:0:127.0.0.1:${otherPort}`,
      "--gateway",
      setup.gateway.url,
      "--audience",
      "tollgate.test",
    ],
    setup.clientEnv(),
    2,
  );
});

afterAll(async () => {
  await forward?.stop();
  await setup?.close();
  redis?.kill("SIGTERM");
});

/** The local port `tollgate forward` printed for a destination. */
function localPortFor(destination: string): string {
  const line = forward
    .stdout()
    .split("\n")
    .find((candidate) => candidate.endsWith(` -> ${destination}`));
  return /^127\.0\.0\.1:(\d+) -> /.exec(line ?? "")![1]!;
}

function redisCli(port: string, args: string[]) {
  return runTool("redis-cli", ["-h", "127.0.0.1", "-p", port, ...args], { PATH: process.env.PATH ?? "" });
}

describe("tollgate forward with redis-cli", () => {
  it("prints one LOCAL -> DESTINATION line per forward", () => {
    expect(forward.stdout()).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${redisPort}\\n127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${otherPort}\\n$`,
      ),
    );
  });

  it("carries a TCP session through a tunnel: SET, then GET on a new connection", async () => {
    const port = localPortFor(`127.0.0.1:${redisPort}`);
    expect((await redisCli(port, ["SET", "tollgate:key", "through the tunnel"])).stdout.trim()).toBe("OK");
    expect((await redisCli(port, ["GET", "tollgate:key"])).stdout.trim()).toBe("through the tunnel");
    const events = await setup.gateway.auditEvents();
    const opened = events.filter(
      (event) => event.event === "tunnel.open" && event.destination === `127.0.0.1:${redisPort}`,
    );
    expect(opened.length).toBeGreaterThanOrEqual(2);
  });

  it("a destination the tunnel does not list is refused: the connection closes, the log says 403", async () => {
    const port = localPortFor(`127.0.0.1:${otherPort}`);
    const result = await redisCli(port, ["PING"]);
    expect(result.stdout.trim()).not.toBe("PONG");
    expect(forward.stderr()).toContain(`-> 127.0.0.1:${otherPort}: gateway answered 403`);
  });

  it("checked at start that the gateway takes the token (the twin of the wrong audience below)", () => {
    expect(forward.stderr()).toContain(
      "tollgate forward: the gateway accepts this job's token of octo-org/octo-repo",
    );
  });

  it("never prints the token", () => {
    expect(jwtsIn(forward.stdout() + forward.stderr())).toEqual([]);
  });
});

describe("tollgate forward argument checks", () => {
  it("a token for another audience: exit 1 at start with the gateway's code, no port opened", async () => {
    const result = await runTool(
      process.execPath,
      [
        "bin/tollgate.js",
        "forward",
        `0:127.0.0.1:${redisPort}`,
        "--gateway",
        setup.gateway.url,
        "--audience",
        "nope.example",
      ],
      setup.clientEnv(),
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      /^tollgate forward: TG_TOKEN_AUDIENCE_MISMATCH: .*"nope\.example" is not an audience/,
    );
  });

  it("refuses a malformed forward with exit code 2 and the expected shape", async () => {
    const result = await runTool(
      process.execPath,
      [
        "bin/tollgate.js",
        "forward",
        "db.internal:5432",
        "--gateway",
        setup.gateway.url,
        "--audience",
        "tollgate.test",
      ],
      setup.clientEnv(),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("expected LOCAL_PORT:HOST:PORT");
  });

  it("refuses a non-loopback local address without --allow-remote", async () => {
    const result = await runTool(
      process.execPath,
      [
        "bin/tollgate.js",
        "forward",
        `0.0.0.0:0:127.0.0.1:${redisPort}`,
        "--gateway",
        setup.gateway.url,
        "--audience",
        "tollgate.test",
      ],
      setup.clientEnv(),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("not a loopback address");
  });
});
