import { type BrokerFeatureOptions, createBrokerFeatureFactory } from "../../src/broker/index.js";
import { type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import {
  type GitHubApiDouble,
  type GitHubApiDoubleOptions,
  startGitHubApiDouble,
} from "../helpers/github-api-double.js";

/** A GitHub API double, a dev issuer and a gateway running the broker against the double. */
export interface BrokerHarness {
  double: GitHubApiDouble;
  gateway: GatewayHarness;
  /** POSTs (or another method) to the gateway; the body is JSON-encoded unless it is a string. */
  call(
    path: string,
    body?: unknown,
    init?: { method?: string; headers?: Record<string, string> },
  ): Promise<Answer>;
  /** Resolves once `/readyz` reports ready (bounded). */
  waitReady(): Promise<void>;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

export interface BrokerHarnessOptions {
  /** The `broker:` section and anything else, given the issuer and the double's URL. */
  yaml: (issuerUrl: string, apiUrl: string) => string;
  /** The credential environment; default: the double's PAT as GITHUB_TOKEN. */
  env?: (double: GitHubApiDouble) => NodeJS.ProcessEnv;
  feature?: BrokerFeatureOptions;
  double?: GitHubApiDoubleOptions;
  /** A GitHub double shared with other harnesses (several instances of one fleet); not closed by this one. */
  sharedDouble?: GitHubApiDouble;
}

/** Fast retries and re-checks so that fault tests take milliseconds. */
export const fastBroker: BrokerFeatureOptions = { retryBaseMs: 5, recheckMs: 20 };

export async function startBrokerHarness(options: BrokerHarnessOptions): Promise<BrokerHarness> {
  const double = options.sharedDouble ?? (await startGitHubApiDouble(options.double));
  const env = options.env?.(double) ?? { GITHUB_TOKEN: double.pat };
  const gateway = await startGatewayHarness((issuerUrl) => options.yaml(issuerUrl, double.url), {
    features: [createBrokerFeatureFactory({ ...fastBroker, ...options.feature })],
    env,
  });
  const call: BrokerHarness["call"] = async (path, body, init = {}) => {
    const response = await fetch(`${gateway.url}${path}`, {
      method: init.method ?? "POST",
      headers: init.headers ?? {},
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Not JSON: the test looks at `text`.
    }
    return { status: response.status, headers: response.headers, text, json };
  };
  return {
    double,
    gateway,
    call,
    async waitReady() {
      for (let attempt = 0; attempt < 200; attempt++) {
        const response = await fetch(`${gateway.url}/readyz`);
        await response.text();
        if (response.status === 200) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error("the broker did not become ready");
    },
    async close() {
      await gateway.close();
      if (options.sharedDouble === undefined) await double.close();
    },
  };
}

/** A `broker:` section with `authorization: none` against the double; `moreScopes` are allowed too. */
export function noneBrokerYaml(apiUrl: string, extra = "", moreScopes: readonly string[] = []): string {
  const allowed = ["octo-org", "match:octo-org/.*", "octocat/hello", "enterprise:octo-corp", "ghost-org"];
  return `broker:
  authorization: none
  github:
    api_url: ${apiUrl}
    timeout: 2s
  allowed_scopes: ${JSON.stringify([...allowed, ...moreScopes])}
  denied_scopes: ["octo-org/payroll"]
${extra}`;
}
