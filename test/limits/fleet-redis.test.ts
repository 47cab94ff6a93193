import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevIssuer, type DevIssuer, githubLikeClaims } from "../../src/dev/dev-issuer.js";
import {
  type GatewayProcess,
  startGatewayProcess,
  stopAllGatewayProcesses,
} from "../helpers/gateway-process.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";
import { closed, type EchoServer, echoRoundTrip, rawConnect, startEchoServer } from "../tunnel/helpers.js";

/**
 * The abuse controls across a fleet: two real `tollgate serve` processes (each its own port, audit file
 * and operational log) behind one real redis-server, trusting one dev issuer, in front of one upstream.
 * With `store.kind: redis` every limit is one limit for the fleet; the twin runs the same configuration
 * with `store.kind: memory`, where every instance counts on its own. Then Redis is stopped under a running
 * fleet and started again. (One gateway in-process: route-limits.test.ts.)
 */

const audience = "tollgate.test";
/** The limit every rate-limited route here has: 5 requests per 60 s per repository_id. */
const quota = 5;
const windowSeconds = 60;

/** Loopback addresses as distinct clients: the gateways listen on 127.0.0.1, any 127/8 source reaches it. */
const goodClient = "127.0.0.1";
const junkClient = "127.0.0.2";
const tokenlessClient = "127.0.0.3";

let redis: TestRedis;
let issuer: DevIssuer;
let upstream: RecordingUpstream;
/** The destination of the `held` tunnel (concurrency: 2 open per repository_id). */
let echo: EchoServer;
/** Every token any test presented (valid, tampered, without jti): none may appear in any output. */
const presented: string[] = [];

beforeAll(async () => {
  [redis, issuer, upstream, echo] = await Promise.all([
    startTestRedis(),
    createDevIssuer({ host: "127.0.0.1", port: 0 }),
    startRecordingUpstream(),
    startEchoServer(),
  ]);
}, 30_000);

afterAll(async () => {
  await stopAllGatewayProcesses();
  await Promise.all([redis?.stop(), issuer?.close(), upstream?.close(), echo?.close()]);
}, 30_000);

function fleetYaml(storeYaml: string): string {
  const limited = (requests: number, extra = "") =>
    `{ requests: ${requests}, per: "${windowSeconds}s", key: repository_id${extra} }`;
  return `listen:
  auth_failures: { max: 3, per: "60s" }
issuers:
  - name: dev
    issuer: ${issuer.issuerUrl}
    audiences: [${audience}]
policies:
  octo:
    claims:
      repository_owner_id: "65"
      event_name: push
routes:
  - name: counted
    path_prefix: /counted/
    upstream: ${upstream.url}
    allow: [octo]
    rate_limit: ${limited(quota)}
  - name: strict
    path_prefix: /strict/
    upstream: ${upstream.url}
    allow: [octo]
    rate_limit: ${limited(quota, ", on_store_error: deny")}
  - name: once
    path_prefix: /once/
    upstream: ${upstream.url}
    allow: [octo]
    single_use: true
  - name: reuse
    path_prefix: /reuse/
    upstream: ${upstream.url}
    allow: [octo]
  - name: bursty
    path_prefix: /bursty/
    upstream: ${upstream.url}
    allow: [octo]
    rate_limit: { requests: 1, per: "${windowSeconds}s", key: workflow, burst: 1 }
tunnels:
  - name: held
    destinations: ["127.0.0.1:${echo.port}"]
    allow: [octo]
    concurrency: { max: 2, key: repository_id }
${storeYaml}`;
}

type Instance = "A" | "B";
interface Fleet {
  A: GatewayProcess;
  B: GatewayProcess;
}

/** Two gateway processes with the same configuration, both counting (see {@link waitCounting}). */
async function startFleet(storeYaml: string): Promise<Fleet> {
  const [A, B] = await Promise.all([
    startGatewayProcess(fleetYaml(storeYaml)),
    startGatewayProcess(fleetYaml(storeYaml)),
  ]);
  await Promise.all([waitCounting(A, "warmup-A"), waitCounting(B, "warmup-B")]);
  return { A, B };
}

async function mint(overrides: Record<string, unknown> = {}): Promise<string> {
  const token = await issuer.mint(githubLikeClaims(overrides), { audience });
  presented.push(token);
  return token;
}

/** A token of the right shape and issuer whose signature is 256 random bytes: fails verification. */
async function tampered(): Promise<string> {
  const [header, payload] = (await mint()).split(".");
  const token = `${header}.${payload}.${randomBytes(256).toString("base64url")}`;
  presented.push(token);
  return token;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  code: string | undefined;
}

/** One request on a new connection from `localAddress`, the token (if any) in Gateway-Authorization. */
function send(
  gateway: GatewayProcess,
  path: string,
  token?: string,
  localAddress = goodClient,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> =
      token === undefined ? {} : { "gateway-authorization": `Bearer ${token}` };
    const req = httpRequest(`${gateway.url}${path}`, { headers, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
        } catch {
          // The upstream's plain-text answer.
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, code });
      });
      res.on("error", reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer from ${gateway.url}${path} in 15 s`)));
    req.on("error", reject);
    req.end();
  });
}

/** Sends `token` to `path` on the instances `pattern` names in turn ("ABBA…"), one after the other. */
async function sendPattern(fleet: Fleet, pattern: string, path: string, token: string): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const instance of pattern) answers.push(await send(fleet[instance as Instance], path, token));
  return answers;
}

/**
 * What a fixed-window limit of {@link quota} answers to `pattern` (within one window): one count for the
 * fleet when the store is shared, one per instance when it is not.
 */
function expectedStatuses(pattern: string, shared: boolean): number[] {
  const used = new Map<string, number>();
  return [...pattern].map((instance) => {
    const counter = shared ? "fleet" : instance;
    const count = used.get(counter) ?? 0;
    used.set(counter, count + 1);
    return count < quota ? 200 : 429;
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns true: at most `attempts` times, `delayMs` apart (bounded in count and time). */
async function until(
  what: string,
  probe: () => Promise<boolean>,
  attempts = 200,
  delayMs = 50,
): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await probe()) return;
    await sleep(delayMs);
  }
  throw new Error(`gave up waiting for ${what} after ${attempts} attempts`);
}

/**
 * Waits until `gateway`'s rate limits count in its store: the `strict` route (on_store_error: deny) answers
 * 503 while the store cannot count, 200 once it can. Only the 200 uses a point of `key`'s allowance.
 */
async function waitCounting(gateway: GatewayProcess, key: string): Promise<void> {
  const token = await mint({ repository_id: key });
  await until(`${gateway.url} to count in its store`, async () => {
    const answer = await send(gateway, "/strict/warmup", token);
    if (answer.status !== 200 && answer.status !== 503) {
      throw new Error(`unexpected ${answer.status} ${answer.code} while waiting for the store`);
    }
    return answer.status === 200;
  });
}

/** The sum of `tollgate_limit_decisions_total` over the series matching `labels`. */
async function decisions(gateway: GatewayProcess, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    const match = /^tollgate_limit_decisions_total\{([^}]*)\} (\S+)$/.exec(line);
    if (match === null) continue;
    const series = Object.fromEntries(
      [...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map(([, name, value]) => [name, value] as const),
    );
    if (Object.entries(labels).every(([name, value]) => series[name] === value)) total += Number(match[2]);
  }
  return total;
}

/** Failed token checks the throttle has recorded on `gateway` (counted, or the one that reached the limit). */
async function failuresRecorded(gateway: GatewayProcess): Promise<number> {
  const control = { control: "auth_failures", limit: "listen.auth_failures" };
  return (
    (await decisions(gateway, { ...control, outcome: "counted" })) +
    (await decisions(gateway, { ...control, outcome: "limit_reached" }))
  );
}

/** The operational log's JSON lines (pino), ignoring anything else. */
function logLines(gateway: GatewayProcess): Record<string, unknown>[] {
  return gateway
    .stderr()
    .split("\n")
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Every form of every presented token a leak could take (CONTRIBUTING: raw, base64, base64url, URL-encoded). */
function canaries(): string[] {
  return [...new Set(presented)].flatMap((token) => [
    token,
    token.split(".")[2]!,
    Buffer.from(token).toString("base64"),
    Buffer.from(token).toString("base64url"),
    encodeURIComponent(token),
  ]);
}

/** Stops the fleet gracefully and checks that no token is in any of its output (stderr, stdout, audit). */
async function expectNoTokenInOutput(fleet: Fleet): Promise<void> {
  expect(await Promise.all([fleet.A.stop(), fleet.B.stop()])).toEqual([0, 0]);
  const forms = canaries();
  expect(forms.length).toBeGreaterThan(10);
  for (const gateway of [fleet.A, fleet.B]) {
    const output = `${gateway.stderr()}\n${gateway.stdout()}\n${await gateway.auditText()}`;
    // The output is real (requests were audited and logged), and none of it is a token.
    expect(output).toContain('"event":"gateway.request"');
    expect(output).toContain("tollgate listening");
    for (const form of forms)
      expect(output.includes(form), `token form ${form.slice(0, 24)}… leaked`).toBe(false);
  }
}

const patterns: readonly [string, string][] = [
  ["all on A", "AAAAAAAA"],
  ["all on B", "BBBBBBBB"],
  ["alternating", "ABABABABABAB"],
  ["one on A, then B", "ABBBBBBBBBBB"],
  ["four on A, then B", "AAAABBBBBBBB"],
  ["mixed", "BBAAABBAAABB"],
];

describe.each([
  { kind: "redis", shared: true },
  { kind: "memory", shared: false },
] as const)("two tollgate processes, store.kind: $kind", ({ kind, shared }) => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet(
      kind === "redis" ? `store:\n  kind: redis\n  url: ${redis.url}\n` : "store:\n  kind: memory\n",
    );
  }, 60_000);
  afterAll(async () => {
    await Promise.all([fleet?.A.stop(), fleet?.B.stop()]);
  }, 30_000);

  it.each(patterns.map(([name, pattern], index) => ({ name, pattern, index })))(
    "rate limit by repository_id, requests $name ($pattern)",
    async ({ pattern, index }) => {
      const repository = `${kind}-pattern-${index}`;
      const answers = await sendPattern(
        fleet,
        pattern,
        "/counted/x",
        await mint({ repository_id: repository }),
      );
      const expected = expectedStatuses(pattern, shared);
      expect(answers.map((answer) => answer.status)).toEqual(expected);
      // Redis: exactly the quota for the fleet, whichever instance the requests reach. Memory: per instance.
      const admitted = answers.filter((answer) => answer.status === 200).length;
      if (shared) expect(admitted).toBe(quota);
      else
        expect(admitted).toBe(
          Math.min(quota, pattern.split("A").length - 1) + Math.min(quota, pattern.split("B").length - 1),
        );

      for (const refused of answers.filter((answer) => answer.status === 429)) {
        expect(refused.code).toBe("TG_RATE_LIMITED");
        const retryAfter = Number(refused.headers["retry-after"]);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
        expect(refused.headers["ratelimit-policy"]).toBe(`"route:counted";q=${quota};w=${windowSeconds}`);
        expect(refused.headers.ratelimit).toBe(`"route:counted";r=0;t=${retryAfter}`);
      }
      for (const admittedAnswer of answers.filter((answer) => answer.status === 200)) {
        expect(admittedAnswer.headers["retry-after"]).toBeUndefined();
      }

      // The twin: another repository has its own allowance, on both instances.
      const other = await mint({ repository_id: `${repository}-other` });
      expect((await send(fleet.A, "/counted/x", other)).status).toBe(200);
      expect((await send(fleet.B, "/counted/x", other)).status).toBe(200);
    },
  );

  it("rate limit: concurrent requests split across both instances", async () => {
    const token = await mint({ repository_id: `${kind}-concurrent` });
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, index) =>
        send(index % 2 === 0 ? fleet.A : fleet.B, "/counted/x", token),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.every((status) => status === 200 || status === 429)).toBe(true);
    // Redis counts atomically for the fleet; in memory each instance admits its own quota.
    expect(statuses.filter((status) => status === 200)).toHaveLength(shared ? quota : 2 * quota);

    // The processes write their audit lines asynchronously: wait for a refusal's line.
    await until("a refused request's audit line", async () =>
      [...(await fleet.A.auditEvents()), ...(await fleet.B.auditEvents())].some(
        (event) =>
          event.route === "counted" &&
          event.limit === "route:counted" &&
          event.status === 429 &&
          event.reason === "TG_RATE_LIMITED",
      ),
    );
  });

  it("concurrency: open tunnels per repository counted across both instances", async () => {
    const token = await mint({ repository_id: `${kind}-tunnels` });
    const open = (gateway: GatewayProcess) =>
      rawConnect(gateway.port, `127.0.0.1:${echo.port}`, { "proxy-authorization": `Bearer ${token}` });
    const onA = await open(fleet.A);
    const onB = await open(fleet.B);
    expect([onA.status, onB.status]).toEqual([200, 200]);
    // Redis: the fleet's two slots are held, so a third (on either) is refused; memory: A has one left.
    const third = await open(fleet.A);
    expect(third.status).toBe(shared ? 429 : 200);
    if (shared) {
      expect(JSON.parse(third.body).error.code).toBe("TG_RATE_LIMITED");
      // The process writes its audit lines asynchronously: wait for the refusal's line.
      await until("the refused tunnel's audit line", async () =>
        (await fleet.A.auditEvents()).some(
          (event) =>
            event.event === "tunnel.open" &&
            event.limit === "tunnel:held:concurrency" &&
            event.status === 429,
        ),
      );
      // The tunnel on B closes: its slot is the fleet's again, and A may open one.
      onB.socket.end();
      await closed(onB.socket);
      let again = await open(fleet.A);
      for (let attempt = 0; attempt < 20 && again.status === 429; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 25)); // B's release is on its way to Redis
        again = await open(fleet.A);
      }
      expect(again.status).toBe(200);
      expect(await echoRoundTrip(again.socket, "fleet", again.rest)).toBe("fleet");
      third.socket.destroy();
      for (const socket of [onA.socket, again.socket]) {
        socket.end();
        await closed(socket);
      }
    } else {
      for (const socket of [onA.socket, onB.socket, third.socket]) {
        socket.end();
        await closed(socket);
      }
    }
  });

  it("single use: a token used on one instance, then on the other", async () => {
    const token = await mint({ repository_id: `${kind}-once` });
    const first = await send(fleet.A, "/once/x", token);
    expect(first.status).toBe(200);
    const onB = await send(fleet.B, "/once/x", token);
    if (shared) {
      expect(onB).toMatchObject({ status: 401, code: "TG_TOKEN_REPLAYED" });
    } else {
      // The twin: B has never seen this token.
      expect(onB.status).toBe(200);
    }
    // Each instance refuses its own second use, whatever the store.
    expect(await send(fleet.A, "/once/x", token)).toMatchObject({ status: 401, code: "TG_TOKEN_REPLAYED" });
    expect(await send(fleet.B, "/once/x", token)).toMatchObject({ status: 401, code: "TG_TOKEN_REPLAYED" });

    await until("the replay's audit line", async () =>
      (await fleet.B.auditEvents()).some(
        (event) =>
          event.route === "once" && event.limit === "single_use" && event.reason === "TG_TOKEN_REPLAYED",
      ),
    );

    // The twin: a route without single_use accepts the same token again and again, on both.
    const reused = await mint({ repository_id: `${kind}-reuse` });
    const reuses = await sendPattern(fleet, "ABAB", "/reuse/x", reused);
    expect(reuses.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
  });

  it("single use: a token without jti is refused; the twin without single_use takes it", async () => {
    const withoutJti = await mint({ repository_id: `${kind}-no-jti`, jti: undefined });
    expect(
      JSON.parse(Buffer.from(withoutJti.split(".")[1]!, "base64url").toString("utf8")),
    ).not.toHaveProperty("jti");
    for (const gateway of [fleet.A, fleet.B]) {
      expect(await send(gateway, "/once/x", withoutJti)).toMatchObject({
        status: 401,
        code: "TG_TOKEN_JTI_MISSING",
      });
      expect((await send(gateway, "/reuse/x", withoutJti)).status).toBe(200);
    }
  });

  it("single use: one token sent to both instances at once", async () => {
    const token = await mint({ repository_id: `${kind}-race` });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, index) => send(index % 2 === 0 ? fleet.A : fleet.B, "/once/x", token)),
    );
    const statuses = answers.map((answer) => answer.status);
    // SET NX in Redis: one use for the fleet. In memory: one per instance.
    expect(statuses.filter((status) => status === 200)).toHaveLength(shared ? 1 : 2);
    for (const answer of answers.filter((candidate) => candidate.status !== 200)) {
      expect(answer).toMatchObject({ status: 401, code: "TG_TOKEN_REPLAYED" });
    }
  });

  it("failed-authentication throttle: failures from one address, counted on both instances", async () => {
    const before = {
      A: await failuresRecorded(fleet.A),
      B: await failuresRecorded(fleet.B),
      reachedB: await decisions(fleet.B, { control: "auth_failures", outcome: "limit_reached" }),
    };
    // Two failures on A: below the limit of 3 for A alone, and for the fleet.
    for (let failure = 1; failure <= 2; failure++) {
      const answer = await send(fleet.A, "/reuse/x", await tampered(), junkClient);
      expect(answer).toMatchObject({ status: 401, code: "TG_TOKEN_SIGNATURE_INVALID" });
      // The throttle counts in the background: wait until A has recorded this failure.
      await until(
        "A to record the failure",
        async () => (await failuresRecorded(fleet.A)) === before.A + failure,
      );
    }
    // One on B: the address's third failure in the fleet (Redis), which reaches the limit and blocks it;
    // in memory B's first of its own.
    const onB = await send(fleet.B, "/reuse/x", await tampered(), junkClient);
    expect(onB).toMatchObject({ status: 401, code: "TG_TOKEN_SIGNATURE_INVALID" });
    await until("B to record the failure", async () => (await failuresRecorded(fleet.B)) === before.B + 1);
    const reachedOnB = { control: "auth_failures", limit: "listen.auth_failures", outcome: "limit_reached" };
    expect(await decisions(fleet.B, reachedOnB)).toBe(before.reachedB + (shared ? 1 : 0));

    // Even a valid token from that address: refused on B when the count is shared — at the connection,
    // before any HTTP is parsed (the 429 itself, on a connection that was already open, is in
    // route-limits.test.ts).
    const valid = await mint({ repository_id: `${kind}-throttle` });
    if (shared) {
      const refusedBefore = await decisions(fleet.B, {
        control: "auth_failures",
        outcome: "connection_refused",
      });
      await expect(send(fleet.B, "/reuse/x", valid, junkClient)).rejects.toThrow();
      await expect(send(fleet.B, "/reuse/x", await tampered(), junkClient)).rejects.toThrow();
      expect(await decisions(fleet.B, { control: "auth_failures", outcome: "connection_refused" })).toBe(
        refusedBefore + 2,
      );
    } else {
      // The twin: in memory B has seen one failure from that address.
      expect((await send(fleet.B, "/reuse/x", valid, junkClient)).status).toBe(200);
      expect((await fleet.B.auditEvents()).some((event) => event.limit === "listen.auth_failures")).toBe(
        false,
      );
    }
    // The twin: the same valid token from another address is served by both, throttle or not.
    expect((await send(fleet.B, "/reuse/x", valid, goodClient)).status).toBe(200);
    expect((await send(fleet.A, "/reuse/x", valid, goodClient)).status).toBe(200);

    if (shared) {
      // A learns of the fleet's count with its next failure from that address, and from then on refuses it.
      const limitReachedBefore = await decisions(fleet.A, {
        control: "auth_failures",
        outcome: "limit_reached",
      });
      expect((await send(fleet.A, "/reuse/x", await tampered(), junkClient)).status).toBe(401);
      await until(
        "A to block the address",
        async () =>
          (await decisions(fleet.A, { control: "auth_failures", outcome: "limit_reached" })) >
          limitReachedBefore,
      );
      await expect(send(fleet.A, "/reuse/x", valid, junkClient)).rejects.toThrow();
      expect((await send(fleet.A, "/reuse/x", valid, goodClient)).status).toBe(200);
    }
  });

  it("failed-authentication throttle: missing tokens do not count", async () => {
    const before = { A: await failuresRecorded(fleet.A), B: await failuresRecorded(fleet.B) };
    for (let request = 0; request < 10; request++) {
      const answer = await send(
        request % 2 === 0 ? fleet.A : fleet.B,
        "/reuse/x",
        undefined,
        tokenlessClient,
      );
      expect(answer).toMatchObject({ status: 401, code: "TG_TOKEN_MISSING" });
    }
    // Ten requests without a token, more than three times the limit: the address is not throttled.
    const valid = await mint({ repository_id: `${kind}-tokenless` });
    expect((await send(fleet.A, "/reuse/x", valid, tokenlessClient)).status).toBe(200);
    expect((await send(fleet.B, "/reuse/x", valid, tokenlessClient)).status).toBe(200);
    expect({ A: await failuresRecorded(fleet.A), B: await failuresRecorded(fleet.B) }).toEqual(before);
    // The twin: a token that fails verification from that address is counted.
    expect(await send(fleet.A, "/reuse/x", await tampered(), tokenlessClient)).toMatchObject({
      status: 401,
      code: "TG_TOKEN_SIGNATURE_INVALID",
    });
    await until("A to record the failure", async () => (await failuresRecorded(fleet.A)) === before.A + 1);
  });

  it("burst: one request in the window, one from the burst allowance, then refused; other values unaffected", async () => {
    const workflow = await mint({ workflow: `${kind}-build` });
    const answers = await sendPattern(fleet, "ABA", "/bursty/x", workflow);
    // Redis: one count and one burst for the fleet. Memory: A and B each have their own.
    expect(answers.map((answer) => answer.status)).toEqual(shared ? [200, 200, 429] : [200, 200, 200]);
    // A value that merely contains another's (not the store's separator pattern) has its own counts.
    const other = await mint({ workflow: `other-${kind}-build` });
    expect((await sendPattern(fleet, "AA", "/bursty/x", other)).map((answer) => answer.status)).toEqual([
      200, 200,
    ]);
  });

  // With Redis every counter shares one key space: the burst counter's keys start `rlb:` and the window
  // counter's `rl:`, so no claim value (here the free-text workflow name "burst:X") can reach another
  // counter's key. (They once were `rl:<limit>:burst:<value>`, the window counter of "burst:<value>".)
  it("a caller whose claim is 'burst:<value>' does not touch <value>'s burst allowance", async () => {
    const victim = await mint({ workflow: `${kind}-deploy` });
    const squatter = await mint({ workflow: `burst:${kind}-deploy` });
    // The squatter's own first request, in its own window.
    expect((await send(fleet.A, "/bursty/x", squatter)).status).toBe(200);
    // The victim has used neither its window nor its burst: two requests must pass (as the test above shows).
    const answers = await sendPattern(fleet, "AA", "/bursty/x", victim);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
  });

  it("no token (valid, tampered or without jti) in either process's operational log, stdout or audit file", async () => {
    await expectNoTokenInOutput(fleet);
  });
});

describe("Redis stopped and started again under a running fleet", () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet(`store:\n  kind: redis\n  url: ${redis.url}\n`);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([fleet?.A.stop(), fleet?.B.stop()]);
  }, 30_000);

  it("rate limits follow on_store_error, single use refuses, readiness holds; counting resumes after", async () => {
    const series = {
      allowed: { control: "rate_limit", limit: "route:counted", outcome: "store_error_allowed" },
      denied: { control: "rate_limit", limit: "route:strict", outcome: "store_error_denied" },
      singleUse: { control: "single_use", limit: "single_use", outcome: "store_error_denied" },
    };
    const snapshot = async (gateway: GatewayProcess) => ({
      allowed: await decisions(gateway, series.allowed),
      denied: await decisions(gateway, series.denied),
      singleUse: await decisions(gateway, series.singleUse),
    });
    const before = { A: await snapshot(fleet.A), B: await snapshot(fleet.B) };

    await redis.stop();
    try {
      // on_store_error: allow (the default): ten requests for one repository, twice the quota, all through.
      const allowed = await sendPattern(
        fleet,
        "ABABABABAB",
        "/counted/x",
        await mint({ repository_id: "outage" }),
      );
      expect(allowed.map((answer) => answer.status)).toEqual(Array(10).fill(200));
      // on_store_error: deny: refused, every one.
      const denied = await sendPattern(
        fleet,
        "ABABABABAB",
        "/strict/x",
        await mint({ repository_id: "outage" }),
      );
      for (const answer of denied)
        expect(answer).toMatchObject({ status: 503, code: "TG_STORE_UNAVAILABLE" });
      // single use (default deny): a replay cannot be ruled out, so even a fresh token is refused.
      for (const gateway of [fleet.A, fleet.B]) {
        expect(await send(gateway, "/once/x", await mint())).toMatchObject({
          status: 503,
          code: "TG_STORE_UNAVAILABLE",
        });
        // The twin: a route without controls does not need the store.
        expect((await send(gateway, "/reuse/x", await mint())).status).toBe(200);
        // Readiness does not depend on the store.
        expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
      }

      for (const instance of ["A", "B"] as const) {
        expect(await snapshot(fleet[instance])).toEqual({
          allowed: before[instance].allowed + 5,
          denied: before[instance].denied + 5,
          singleUse: before[instance].singleUse + 1,
        });
        // Told on the operational log, once per control (at most every 30 s), not once per request.
        const limitWarnings = logLines(fleet[instance]).filter((line) => line.component === "limits");
        const about = (control: string) => limitWarnings.filter((line) => line.control === control).length;
        expect(about("rate_limit")).toBeGreaterThanOrEqual(1);
        expect(about("rate_limit")).toBeLessThanOrEqual(2);
        expect(about("single_use")).toBeGreaterThanOrEqual(1);
        expect(about("single_use")).toBeLessThanOrEqual(2);
        expect(limitWarnings.every((line) => line.level === 40)).toBe(true);
        expect(limitWarnings.map((line) => String(line.msg)).join("\n")).toContain(
          "the shared store could not answer for rate_limit",
        );
        const storeWarnings = logLines(fleet[instance]).filter((line) => line.component === "store");
        expect(storeWarnings.length).toBeGreaterThanOrEqual(1);
        expect(storeWarnings.length).toBeLessThanOrEqual(2);
        // The audit lines name the limit that could not count.
        await until(`${instance}'s audit lines of the outage`, async () => {
          const events = await fleet[instance].auditEvents();
          const refused = (route: string, limit: string) =>
            events.some(
              (event) =>
                event.route === route &&
                event.limit === limit &&
                event.status === 503 &&
                event.reason === "TG_STORE_UNAVAILABLE",
            );
          return refused("strict", "route:strict") && refused("once", "single_use");
        });
        // /metrics shows both outcomes.
        const metrics = await (await fetch(`${fleet[instance].url}/metrics`)).text();
        expect(metrics).toMatch(
          /tollgate_limit_decisions_total\{[^}]*outcome="store_error_allowed"[^}]*\} \d/,
        );
        expect(metrics).toMatch(
          /tollgate_limit_decisions_total\{[^}]*outcome="store_error_denied"[^}]*\} \d/,
        );
      }
    } finally {
      await redis.start();
    }

    // Back (empty): once each instance has reconnected, the fleet counts together again.
    await Promise.all([waitCounting(fleet.A, "back-A"), waitCounting(fleet.B, "back-B")]);
    const counted = await sendPattern(
      fleet,
      "ABABABAB",
      "/counted/x",
      await mint({ repository_id: "after-outage" }),
    );
    expect(counted.map((answer) => answer.status)).toEqual(expectedStatuses("ABABABAB", true));
    const strict = await sendPattern(
      fleet,
      "BABABABA",
      "/strict/x",
      await mint({ repository_id: "after-outage" }),
    );
    expect(strict.map((answer) => answer.status)).toEqual(expectedStatuses("BABABABA", true));
    const once = await mint();
    expect((await send(fleet.A, "/once/x", once)).status).toBe(200);
    expect(await send(fleet.B, "/once/x", once)).toMatchObject({ status: 401, code: "TG_TOKEN_REPLAYED" });
  }, 60_000);

  it("no token in either process's output through the outage", async () => {
    await expectNoTokenInOutput(fleet);
  });
});
