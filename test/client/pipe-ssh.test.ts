import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemDial } from "../../src/tunnel/index.js";
import { createTunnelFeatureFactory } from "../../src/tunnel/tunnel-feature.js";
import { whoamiFeature } from "../../src/whoami/index.js";
import { type SshServer, startSshServer } from "../helpers/ssh-server.js";
import {
  type CliProcess,
  cliPath,
  freePort,
  jwtsIn,
  root,
  runTool,
  startCli,
  startTunnelSetup,
  type TunnelSetup,
} from "./client-harness.js";
import { parseEnvironmentFile } from "./environment-file.js";

// The real OpenSSH client and server (Debian's), with `tollgate pipe` as ssh's ProxyCommand through a real
// gateway. The gateway resolves git.internal to a private address and dials the test's sshd on loopback
// instead (its resolver and dialer are injected), so ssh talks to a host *name*, as it would in a job.
let sshd: SshServer;
let setup: TunnelSetup;
let configCount = 0;

const names: Record<string, string> = { "git.internal": "10.20.0.22", "other.internal": "10.20.0.23" };

beforeAll(async () => {
  sshd = await startSshServer(await freePort());
  const tunnels = createTunnelFeatureFactory({
    lookup: async (hostname) => (names[hostname] ? [{ address: names[hostname]!, family: 4 }] : []),
    dial: (options) =>
      systemDial({
        ...options,
        host: "127.0.0.1",
        port: options.host === "10.20.0.22" && options.port === 22 ? sshd.port : 9,
      }),
  });
  setup = await startTunnelSetup(["git.internal:22"], "", { features: [tunnels, whoamiFeature] });
}, 30_000);

afterAll(async () => {
  await setup?.close();
  await sshd?.close();
});

/** An ssh configuration of its own (`-F`: the system's is not read), with its own known_hosts. */
async function sshConfig(proxyCommand: string | undefined, extra: string[] = []) {
  configCount += 1;
  const knownHosts = join(sshd.dir, `known_hosts-${configCount}`);
  const file = join(sshd.dir, `ssh_config-${configCount}`);
  await writeFile(knownHosts, "");
  await writeFile(
    file,
    [
      "Host *",
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.clientKey}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${knownHosts}`,
      "  GlobalKnownHostsFile /dev/null",
      "  StrictHostKeyChecking accept-new",
      "  HashKnownHosts no",
      "  BatchMode yes",
      "  ConnectTimeout 15",
      ...(proxyCommand === undefined ? [] : [`  ProxyCommand ${proxyCommand}`]),
      ...extra.map((line) => `  ${line}`),
      "",
    ].join("\n"),
  );
  return { file, knownHosts: () => readFile(knownHosts, "utf8") };
}

const pipeCommand = (audience = "tollgate.test") =>
  `${process.execPath} ${cliPath} pipe %h:%p --gateway ${setup.gateway.url} --audience ${audience}`;

function ssh(config: string, args: string[], input?: string) {
  const command = input === undefined ? "ssh" : "sh";
  const argv =
    input === undefined
      ? ["-F", config, ...args]
      : ["-c", `${input} | ssh -F ${config} ${args.map((arg) => `'${arg}'`).join(" ")}`];
  return runTool(command, argv, setup.clientEnv(), { timeoutMs: 30_000 });
}

describe("ssh with tollgate pipe as ProxyCommand", () => {
  it("runs a command on the server, and records the host key under the real host name", async () => {
    const config = await sshConfig(pipeCommand());
    const result = await ssh(config.file, [
      "git.internal",
      'test -n "$SSH_CONNECTION" && echo "over ssh: yes"',
    ]);
    expect(result.stderr).not.toContain("tollgate pipe:");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("over ssh: yes\n");
    // `git.internal ssh-ed25519 AAAA…`: the name the job used, on port 22, never 127.0.0.1.
    expect((await config.knownHosts()).trim()).toBe(`git.internal ${sshd.hostKey}`);
    const opened = (await setup.gateway.auditEvents()).filter((event) => event.event === "tunnel.open");
    expect(opened.at(-1)).toMatchObject({ decision: "allow", destination: "git.internal:22" });
    expect(jwtsIn(result.stdout + result.stderr)).toEqual([]);
  });

  it("carries a megabyte of standard input and passes its end on (wc counts, then the session closes)", async () => {
    const config = await sshConfig(pipeCommand());
    const result = await ssh(config.file, ["git.internal", "wc -c"], "head -c 1048576 /dev/zero");
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe("1048576");
  });

  it("a destination no tunnel lists fails, with the gateway's code and request_id on stderr", async () => {
    const config = await sshConfig(pipeCommand());
    const result = await ssh(config.file, ["other.internal", "echo never"]);
    expect(result.code).toBe(255);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      /tollgate pipe: other\.internal:22: gateway answered 403 TG_TUNNEL_DESTINATION_FORBIDDEN \(request_id [0-9a-f-]{36}\)/,
    );
    expect(await config.knownHosts()).toBe("");
  });

  it("a token for another audience fails with 407 and the reason the gateway gives when asked", async () => {
    const config = await sshConfig(pipeCommand("sts.amazonaws.com"));
    const result = await ssh(config.file, ["git.internal", "echo never"]);
    expect(result.code).toBe(255);
    expect(result.stderr).toMatch(/gateway answered 407 TG_PROXY_AUTH_INVALID \(request_id [0-9a-f-]{36}\)/);
    expect(result.stderr).toMatch(/TG_TOKEN_AUDIENCE_MISMATCH: .*"sts\.amazonaws\.com" is not an audience/);
    expect(jwtsIn(result.stderr)).toEqual([]);
  });
});

describe("ssh through tollgate proxy with OpenBSD netcat (docs/client.md's third way)", () => {
  it("nc -X connect carries ssh through the local proxy; the host key is under the real name", async () => {
    const proxy = await startCli(
      ["proxy", "--gateway", setup.gateway.url, "--audience", "tollgate.test"],
      setup.clientEnv(),
      2,
    );
    try {
      const port = /^HTTPS_PROXY=http:\/\/127\.0\.0\.1:(\d+)$/m.exec(proxy.stdout())![1]!;
      const config = await sshConfig(`nc.openbsd -X connect -x 127.0.0.1:${port} %h %p`);
      const result = await ssh(config.file, ["git.internal", "echo via netcat"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe("via netcat\n");
      expect((await config.knownHosts()).trim()).toBe(`git.internal ${sshd.hostKey}`);
      // The twin: a destination no tunnel lists. netcat shows little; the proxy's log has the code.
      const refused = await ssh(config.file, ["other.internal", "echo never"]);
      expect(refused.code).toBe(255);
      expect(proxy.stderr()).toMatch(
        /CONNECT other\.internal:22: gateway answered 403 TG_TUNNEL_DESTINATION_FORBIDDEN/,
      );
    } finally {
      await proxy.stop();
    }
  });
});

describe("ssh with the GitHub Action's ssh-proxy-command output", () => {
  it("the main step (run as the runner runs it) gives a ProxyCommand that a later step's ssh uses", async () => {
    const output = join(sshd.dir, "github-output");
    await writeFile(output, "");
    const main = await runTool(
      process.execPath,
      [join(root, "action/dist/main.mjs")],
      setup.clientEnv({
        RUNNER_TEMP: sshd.dir,
        GITHUB_OUTPUT: output,
        GITHUB_STATE: join(sshd.dir, "github-state"),
        GITHUB_ENV: join(sshd.dir, "github-env"),
        INPUT_GATEWAY: setup.gateway.url,
        INPUT_AUDIENCE: "tollgate.test",
        INPUT_PROXY: "false",
      }),
      { timeoutMs: 30_000 },
    );
    expect(main.code).toBe(0);
    const proxyCommand = parseEnvironmentFile(await readFile(output, "utf8"))["ssh-proxy-command"]!;
    expect(proxyCommand).toContain("action/dist/pipe.mjs' %h:%p");
    const config = await sshConfig(proxyCommand);
    const result = await ssh(config.file, ["git.internal", "echo via the action"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("via the action\n");
    expect((await config.knownHosts()).trim()).toBe(`git.internal ${sshd.hostKey}`);
  });
});

describe("ssh through tollgate forward (what docs/client.md says to avoid, or to fix with HostKeyAlias)", () => {
  let forward: CliProcess;
  let local: string;
  beforeAll(async () => {
    forward = await startCli(
      ["forward", "0:git.internal:22", "--gateway", setup.gateway.url, "--audience", "tollgate.test"],
      setup.clientEnv(),
      1,
    );
    local = /^127\.0\.0\.1:(\d+) -> git\.internal:22$/m.exec(forward.stdout())![1]!;
  });
  afterAll(async () => {
    await forward?.stop();
  });

  it("ssh records the host key as [127.0.0.1]:PORT, shared by whatever else is forwarded there", async () => {
    const config = await sshConfig(undefined);
    const result = await ssh(config.file, ["-p", local, "127.0.0.1", "echo forwarded"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("forwarded\n");
    expect((await config.knownHosts()).trim()).toBe(`[127.0.0.1]:${local} ${sshd.hostKey}`);
  });

  it("with HostKeyAlias git.internal, the key is recorded under the real name", async () => {
    const config = await sshConfig(undefined, ["HostKeyAlias git.internal"]);
    const result = await ssh(config.file, ["-p", local, "127.0.0.1", "echo aliased"]);
    expect(result.code).toBe(0);
    expect((await config.knownHosts()).trim()).toBe(`git.internal ${sshd.hostKey}`);
  });
});
