import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitHubApiDouble, startGitHubApiDouble } from "../helpers/github-api-double.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { type BrokerHarness, noneBrokerYaml, startBrokerHarness } from "./broker-harness.js";

const registration = "/repos/octo-org/octo-repo/actions/runners/registration-token";

/** Two instances of one fleet: one GitHub, each instance with the store the YAML names. */
async function fleet(double: GitHubApiDouble, storeYaml: string): Promise<[BrokerHarness, BrokerHarness]> {
  const start = () =>
    startBrokerHarness({
      yaml: (_issuer, api) => `${noneBrokerYaml(api)}${storeYaml}`,
      sharedDouble: double,
    });
  const instances = [await start(), await start()] as [BrokerHarness, BrokerHarness];
  await Promise.all(instances.map((instance) => instance.waitReady()));
  return instances;
}

describe("store.kind: redis — the broker's cache shared by every instance", () => {
  let redis: TestRedis;
  let double: GitHubApiDouble;
  beforeAll(async () => {
    redis = await startTestRedis();
    double = await startGitHubApiDouble();
  });
  afterAll(async () => {
    await double?.close();
    await redis?.stop();
  });

  it("a token minted through one instance is served by the other without asking GitHub again", async () => {
    const [first, second] = await fleet(double, `store:\n  kind: redis\n  url: ${redis.url}\n`);
    try {
      const before = double.count("POST", registration);
      const minted = await first.call("/register", { scope: "octo-org/octo-repo" });
      const shared = await second.call("/register", { scope: "octo-org/octo-repo" });
      expect(minted.status).toBe(200);
      expect(shared.status).toBe(200);
      expect(shared.json.token).toBe(minted.json.token);
      expect(double.count("POST", registration) - before).toBe(1);
      // One prefix, the store's: tollgate:broker:v1:<GitHub>:registration:<scope>.
      const probe = new Redis(redis.url);
      try {
        expect(await probe.keys("*octo-org/octo-repo")).toEqual([
          expect.stringMatching(/^tollgate:broker:v1:[0-9a-f]{12}:registration:octo-org\/octo-repo$/),
        ]);
      } finally {
        probe.disconnect();
      }
      const events = await second.gateway.auditEvents();
      expect(events.at(-1)).toMatchObject({ event: "runner.registration_token", cache_hit: true });
      // The token is in Redis, and never in either instance's logs.
      expect(await first.gateway.allOutput()).not.toContain(String(minted.json.token));
      expect(await second.gateway.allOutput()).not.toContain(String(minted.json.token));
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it("the twin: with memory stores each instance asks GitHub itself", async () => {
    const [first, second] = await fleet(double, "store:\n  kind: memory\n");
    try {
      const before = double.count("POST", "/orgs/octo-org/actions/runners/registration-token");
      expect((await first.call("/register", { scope: "octo-org" })).status).toBe(200);
      expect((await second.call("/register", { scope: "octo-org" })).status).toBe(200);
      expect(double.count("POST", "/orgs/octo-org/actions/runners/registration-token") - before).toBe(2);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it("reloads do not pile up Redis connections; a request in flight during one finishes first", async () => {
    const probe = new Redis(redis.url);
    const clients = async () =>
      String(await probe.client("LIST"))
        .trim()
        .split("\n").length;
    const broker = await startBrokerHarness({
      yaml: (_issuer, api) => `${noneBrokerYaml(api)}store:\n  kind: redis\n  url: ${redis.url}\n`,
      sharedDouble: double,
    });
    try {
      await broker.waitReady();
      expect((await broker.call("/register", { scope: "octo-org" })).status).toBe(200);
      const baseline = await clients();
      // Connections come and go as brokers are built and retired: wait for the count to hold still.
      const settled = async () => {
        let steady = 0;
        let count = await clients();
        for (let attempt = 0; attempt < 100 && steady < 5; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          const next = await clients();
          steady = next === count ? steady + 1 : 0;
          count = next;
        }
        return count;
      };

      for (let reload = 0; reload < 3; reload++) await broker.gateway.running.reload(broker.gateway.config);
      expect(await settled()).toBe(baseline);

      // A request the old broker is answering when the reload comes keeps its store and GitHub pool.
      double.fault({
        path: "/orgs/octo-org/actions/runners/remove-token",
        status: 201,
        delayMs: 300,
        times: 1,
      });
      const inFlight = broker.call("/remove", { scope: "octo-org/octo-repo" });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await broker.gateway.running.reload(broker.gateway.config);
      expect((await inFlight).status).toBe(200);
      expect(await settled()).toBe(baseline);
      // The new broker serves.
      expect((await broker.call("/register", { scope: "octo-org/octo-repo" })).status).toBe(200);
    } finally {
      double.clearFaults();
      await broker.close();
      probe.disconnect();
    }
  });

  it("with Redis gone the broker still answers, from GitHub", async () => {
    const [first, second] = await fleet(double, `store:\n  kind: redis\n  url: ${redis.url}\n`);
    try {
      await redis.stop();
      const answer = await first.call("/remove", { scope: "octo-org" });
      expect(answer.status).toBe(200);
      // Without waiting on Redis: a store that is known to be down is not asked (it was 2–3 s a request).
      const started = Date.now();
      expect((await second.call("/remove", { scope: "octo-org/octo-repo" })).status).toBe(200);
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(await first.gateway.allOutput()).toContain("shared store unavailable");
      expect(await first.gateway.allOutput()).not.toContain(String(answer.json.token));
    } finally {
      await Promise.all([first.close(), second.close()]);
      await redis.start();
    }
  }, 30_000);
});

describe("a Redis password in store.url", () => {
  it("is registered as a secret: the logs redact it like the credential", async () => {
    const double = await startGitHubApiDouble();
    const password = "redis-store-password-canary-4711";
    const broker = await startBrokerHarness({
      yaml: (_issuer, api) =>
        `${noneBrokerYaml(api)}store:\n  kind: redis\n  url: redis://:${password}@127.0.0.1:9\n`,
      sharedDouble: double,
    });
    try {
      expect(broker.gateway.running.redactor.redact(`url ${password} end`)).not.toContain(password);
      // The twin: a string that is not a registered secret is left alone.
      expect(broker.gateway.running.redactor.redact("url not-a-secret end")).toBe("url not-a-secret end");
      expect(await broker.gateway.allOutput()).not.toContain(password);
    } finally {
      await broker.close();
      await double.close();
    }
  }, 30_000);
});
