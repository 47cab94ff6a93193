import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestCertificates, type TestCertificates } from "../helpers/tls-fixture.js";
import { type CliProcess, runTool, startCli, startTunnelSetup, type TunnelSetup } from "./client-harness.js";
import { createBareRepository, gitEnv, startGitHttpServer } from "./git-http-server.js";

// `git clone` of a private repository served by `git http-backend`, through `tollgate proxy` and the gateway.
let certs: TestCertificates;
let repository: Awaited<ReturnType<typeof createBareRepository>>;
let gitHttp: Awaited<ReturnType<typeof startGitHttpServer>>;
let gitHttps: Awaited<ReturnType<typeof startGitHttpServer>>;
let forbiddenGit: Awaited<ReturnType<typeof startGitHttpServer>>;
let setup: TunnelSetup;
let proxy: CliProcess;
let proxyUrl: string;
let work: string;

beforeAll(async () => {
  certs = await createTestCertificates();
  repository = await createBareRepository("private content\n");
  gitHttp = await startGitHttpServer(repository.root);
  gitHttps = await startGitHttpServer(repository.root, certs);
  forbiddenGit = await startGitHttpServer(repository.root);
  setup = await startTunnelSetup([`127.0.0.1:${gitHttp.port}`, `127.0.0.1:${gitHttps.port}`]);
  proxy = await startCli(
    ["proxy", "--gateway", setup.gateway.url, "--audience", "tollgate.test"],
    setup.clientEnv(),
    2,
  );
  proxyUrl = /^HTTPS_PROXY=(\S+)$/m.exec(proxy.stdout())![1]!;
  work = await mkdtemp(join(tmpdir(), "tollgate-clone-"));
});

afterAll(async () => {
  await proxy?.stop();
  await setup?.close();
  await Promise.all([gitHttp, gitHttps, forbiddenGit].filter(Boolean).map((server) => server.close()));
  await repository?.close();
  await certs?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

function clone(url: string, into: string, proxyEnv: Record<string, string>) {
  return runTool("git", ["clone", "-q", url, join(work, into)], gitEnv(work, proxyEnv), {
    timeoutMs: 30_000,
  });
}

describe("git clone through tollgate proxy", () => {
  it("clones over plain HTTP with http_proxy (absolute-form requests through the gateway)", async () => {
    const result = await clone(`http://127.0.0.1:${gitHttp.port}/repo.git`, "over-http", {
      http_proxy: proxyUrl,
    });
    expect(result.stderr).toBe("");
    expect(await readFile(join(work, "over-http/README.md"), "utf8")).toBe("private content\n");
    const events = await setup.gateway.auditEvents();
    expect(events).toContainEqual(
      expect.objectContaining({
        event: "gateway.request",
        decision: "allow",
        destination: `127.0.0.1:${gitHttp.port}`,
      }),
    );
  });

  it("clones over HTTPS with HTTPS_PROXY (a CONNECT tunnel; git verifies the server's certificate)", async () => {
    const result = await clone(`https://127.0.0.1:${gitHttps.port}/repo.git`, "over-https", {
      HTTPS_PROXY: proxyUrl,
      GIT_SSL_CAINFO: certs.caFile,
    });
    expect(result.stderr).toBe("");
    expect(await readFile(join(work, "over-https/README.md"), "utf8")).toBe("private content\n");
    expect(gitHttps.requests.some((line) => line.includes("git-upload-pack"))).toBe(true);
  });

  it("cannot clone from a git server the tunnel does not list: the gateway answers 403 and git fails", async () => {
    const result = await clone(`http://127.0.0.1:${forbiddenGit.port}/repo.git`, "forbidden", {
      http_proxy: proxyUrl,
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/403/);
    expect(forbiddenGit.requests).toEqual([]);
  });
});
