import { expect } from "vitest";
import {
  createDevIssuer,
  type DevIssuer,
  githubLikeClaims,
  type MintOptions,
} from "../../src/dev/dev-issuer.js";
import { isTollgateError } from "../../src/errors/index.js";
import {
  createTokenVerifier,
  defaultVerifierSettings,
  type IssuerSettings,
  type TokenVerifier,
  type VerifierSettings,
  type VerifierTestHooks,
} from "../../src/oidc/index.js";

/** The audience every harness issuer expects. */
export const testAudience = "tollgate.test";

/** A fixed instant (2030-03-17T17:46:40Z) so token times never depend on when the tests run. */
export const frozenStartMs = 1_900_000_000_000;

/** A clock the test moves by hand. */
export interface TestClock {
  (): number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function createTestClock(startMs = frozenStartMs): TestClock {
  let now = startMs;
  const clock = (() => now) as TestClock;
  clock.advance = (ms) => {
    now += ms;
  };
  clock.set = (ms) => {
    now = ms;
  };
  return clock;
}

/**
 * A fetch that refuses anything but 127.0.0.1, so a verifier under test can never reach another address
 * even if it tried to discover from a token's `iss`. Records every URL it was asked for.
 */
export function createLoopbackFetch(): { fetch: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  const loopbackFetch: typeof fetch = (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    urls.push(url);
    if (new URL(url).hostname !== "127.0.0.1") {
      return Promise.reject(new Error(`test fetch refused a non-loopback URL: ${url}`));
    }
    return fetch(input, init);
  };
  return { fetch: loopbackFetch, urls };
}

export interface VerifierHarness {
  issuer: DevIssuer;
  verifier: TokenVerifier;
  clock: TestClock;
  issuerSettings: IssuerSettings;
  verifierSettings: VerifierSettings;
  /** URLs the verifier fetched. */
  fetchedUrls: string[];
  /** GitHub-like claims plus overrides, for {@link testAudience}, at the harness clock. */
  mint(overrides?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Seconds since the epoch at the harness clock. */
  nowSeconds(): number;
  close(): Promise<void>;
}

export interface HarnessOptions {
  verifier?: Partial<VerifierSettings>;
  issuer?: Partial<IssuerSettings>;
  /** More issuers trusted by the same verifier. */
  extraIssuers?: (issuer: DevIssuer) => IssuerSettings[];
  hooks?: VerifierTestHooks;
  /** Call `verifier.start()` before returning (default true). */
  start?: boolean;
}

/** A real dev issuer on 127.0.0.1 and a verifier that trusts it, both on one frozen clock. */
export async function startVerifierHarness(options: HarnessOptions = {}): Promise<VerifierHarness> {
  const clock = createTestClock();
  const issuer = await createDevIssuer({ host: "127.0.0.1", port: 0, clock });
  const issuerSettings: IssuerSettings = {
    name: "dev",
    issuer: issuer.issuerUrl,
    audiences: [testAudience],
    algorithms: ["RS256"],
    clockSkewMs: 30_000,
    ...options.issuer,
  };
  // Long refresh interval: background refresh is driven by the clock in these tests, not by timers.
  const verifierSettings: VerifierSettings = {
    ...defaultVerifierSettings,
    refreshIntervalMs: 10 * 60_000,
    ...options.verifier,
  };
  const loopback = createLoopbackFetch();
  const verifier = createTokenVerifier(
    [issuerSettings, ...(options.extraIssuers?.(issuer) ?? [])],
    verifierSettings,
    { clock, fetch: loopback.fetch, ...options.hooks },
  );
  if (options.start !== false) await verifier.start();
  return {
    issuer,
    verifier,
    clock,
    issuerSettings,
    verifierSettings,
    fetchedUrls: loopback.urls,
    mint: (overrides = {}, mintOptions = {}) =>
      issuer.mint(githubLikeClaims(overrides), { audience: testAudience, ...mintOptions }),
    nowSeconds: () => Math.floor(clock() / 1000),
    async close() {
      verifier.close();
      await issuer.close();
    },
  };
}

/**
 * Asserts that verification fails with `code`, and that the error's message names neither the token nor
 * its signature (messages go to audit logs).
 */
export async function expectRejected(
  verifier: TokenVerifier,
  token: string,
  code: string,
  connection?: object,
): Promise<Error> {
  const error = await verifier.verify(token, connection).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, `expected ${code}`).toBeDefined();
  expect(isTollgateError(error)).toBe(true);
  const tollgateError = error as Error & { code: string };
  expect(tollgateError.code).toBe(code);
  if (token.length > 0) expect(tollgateError.message).not.toContain(token);
  const signature = token.split(".")[2];
  if (signature !== undefined && signature.length > 16)
    expect(tollgateError.message).not.toContain(signature);
  return tollgateError;
}

/** Waits (bounded) until `condition` holds; for background work started by the verifier. */
export async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
