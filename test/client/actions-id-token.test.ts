import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  actionsTokenEndpointFromEnv,
  actionsTokenUrl,
  createActionsTokenSource,
  requestActionsIdToken,
} from "../../src/client/index.js";
import { createDevIssuer, type DevIssuer } from "../../src/dev/dev-issuer.js";
import { TollgateError } from "../../src/errors/index.js";
import { type ActionsTokenEndpoint, startActionsTokenEndpoint } from "../helpers/actions-token-endpoint.js";

let issuer: DevIssuer;
let endpoint: ActionsTokenEndpoint;

beforeAll(async () => {
  issuer = await createDevIssuer();
  endpoint = await startActionsTokenEndpoint(issuer);
});

afterAll(async () => {
  await endpoint.close();
  await issuer.close();
});

const noRetry = { retryDelaysMs: [] };

describe("the Actions token endpoint client", () => {
  it("appends the URL-encoded audience to the runner's URL, keeping its query as it is", () => {
    expect(actionsTokenUrl("https://run.example/idtoken?api-version=2.0", "gw.example.com/a b")).toBe(
      "https://run.example/idtoken?api-version=2.0&audience=gw.example.com%2Fa%20b",
    );
    expect(actionsTokenUrl("https://run.example/idtoken", "x")).toBe(
      "https://run.example/idtoken?audience=x",
    );
  });

  it("gets a token for the requested audience", async () => {
    const token = await requestActionsIdToken({
      requestUrl: endpoint.requestUrl,
      requestToken: endpoint.requestToken,
      audience: "tollgate.example.com",
    });
    expect(decodeJwt(token)).toMatchObject({ aud: "tollgate.example.com", repository: "octo-org/octo-repo" });
    expect(endpoint.audiences.at(-1)).toBe("tollgate.example.com");
  });

  it("is refused with a wrong runtime credential, says which permission to check, and does not retry", async () => {
    const refusedBefore = endpoint.refusedCount();
    const error = await requestActionsIdToken({
      requestUrl: endpoint.requestUrl,
      requestToken: "wrong-runtime-token",
      audience: "tollgate.example.com",
      retryDelaysMs: [0, 0],
    }).catch((caught: unknown) => caught as TollgateError);
    expect(error).toBeInstanceOf(TollgateError);
    expect(error).toMatchObject({ code: "TG_CLIENT_TOKEN_UNAVAILABLE" });
    expect((error as Error).message).toContain("HTTP 401");
    expect((error as Error).message).toContain("id-token: write");
    expect((error as Error).message).not.toContain("wrong-runtime-token");
    expect(endpoint.refusedCount() - refusedBefore).toBe(1);
  });

  it("retries a 5xx, then reports it", async () => {
    endpoint.configure({ status: 503 });
    try {
      let calls = 0;
      const counting: typeof fetch = (input, init) => {
        calls += 1;
        return fetch(input, init);
      };
      await expect(
        requestActionsIdToken({
          requestUrl: endpoint.requestUrl,
          requestToken: endpoint.requestToken,
          audience: "a",
          fetch: counting,
          retryDelaysMs: [0, 0],
        }),
      ).rejects.toThrow(/HTTP 503/);
      expect(calls).toBe(3);
    } finally {
      endpoint.configure({});
    }
  });

  it("reports an endpoint that cannot be reached", async () => {
    await expect(
      requestActionsIdToken({
        requestUrl: "http://127.0.0.1:9/_apis/actions/idtoken?api-version=2.0",
        requestToken: "t",
        audience: "a",
        ...noRetry,
      }),
    ).rejects.toThrow(/could not be reached/);
  });

  it("rejects an answer without a value", async () => {
    const fake: typeof fetch = async () => new Response(JSON.stringify({ count: 0 }), { status: 200 });
    await expect(
      requestActionsIdToken({
        requestUrl: "http://x/?a=1",
        requestToken: "t",
        audience: "a",
        fetch: fake,
        ...noRetry,
      }),
    ).rejects.toThrow(/without a `value`/);
  });

  it("names both missing variables and the permission that provides them", () => {
    expect(() => actionsTokenEndpointFromEnv({})).toThrow(
      "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: grant the job `permissions: id-token: write`",
    );
    expect(() => actionsTokenEndpointFromEnv({ ACTIONS_ID_TOKEN_REQUEST_URL: "http://x/?a=1" })).toThrow(
      /^ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set/,
    );
    expect(actionsTokenEndpointFromEnv(endpoint.env())).toEqual({
      requestUrl: endpoint.requestUrl,
      requestToken: endpoint.requestToken,
    });
  });

  it("feeds a token source that refreshes real tokens before they expire (injected clock)", async () => {
    let now = Date.now();
    const before = endpoint.audiences.length;
    const source = createActionsTokenSource({
      endpoint: actionsTokenEndpointFromEnv(endpoint.env()),
      audience: "refresh.example",
      clock: () => now,
    });
    const first = await source.token();
    now += 200_000;
    expect(await source.token()).toBe(first);
    now += 50_000; // 50 s left on a five-minute token
    const second = await source.token();
    expect(second).not.toBe(first);
    expect(endpoint.audiences.length - before).toBe(2);
  });
});
