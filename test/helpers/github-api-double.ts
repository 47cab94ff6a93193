import { generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { jwtVerify } from "jose";

/**
 * A local double of the GitHub REST API endpoints the runner token broker uses, shaped as GitHub
 * documents them (https://docs.github.com/rest/actions/self-hosted-runners,
 * https://docs.github.com/rest/apps/apps):
 *
 * - `POST /repos/{owner}/{repo}/actions/runners/registration-token` and `…/remove-token`, the same under
 *   `/orgs/{org}` and `/enterprises/{enterprise}`: 201 `{token, expires_at}` (valid one hour).
 * - `POST …/actions/runners/generate-jitconfig` (repos, orgs, enterprises): 201 `{runner, encoded_jit_config}`;
 *   409 when the name is taken in that scope, 422 for invalid settings.
 * - `GET /repos/{owner}/{repo}/installation`, `GET /orgs/{org}/installation` (App JWT): the installation.
 * - `POST /app/installations/{id}/access_tokens` (App JWT): 201 `{token, expires_at, permissions, …}`.
 * - `GET /app` (App JWT), `GET /rate_limit` (PAT or installation token).
 * - A renamed or transferred repository (`renamed`, or an owner renamed): every
 *   `/repos/{old-owner}/{old-repo}/…` path is answered with a redirect to the same path under
 *   `/repositories/{id}`, 301 for GET and 307 for other methods, as GitHub does
 *   (https://developer.github.com/changes/2015-04-17-preview-repository-redirects/).
 *
 * The App JWT is verified with the App's public key (`jose`): RS256, `iss` = App id, at most 10 minutes
 * long, as GitHub requires. Every answer carries `x-ratelimit-*` headers. Faults (status, headers, delay)
 * can be queued per path; every call is counted and recorded (without its credential).
 */
export interface GitHubApiDouble {
  /** `http://127.0.0.1:PORT`, to use as `api_url` / `GITHUB_API_URL`. */
  readonly url: string;
  /** The PAT this double accepts. */
  readonly pat: string;
  /** The GitHub App this double knows (its keys and id). */
  readonly app: AppKeys;
  /** Every request received, in order. */
  readonly calls: RecordedCall[];
  /** How many requests matched `method` and `path` (a string is an exact path, a RegExp is tested). */
  count(method: string, path: string | RegExp): number;
  /** Queues a fault for matching requests, used `times` times (default: every time). */
  fault(fault: Fault): void;
  clearFaults(): void;
  /** Every secret the double handed out (installation tokens, runner tokens, JIT configs). */
  readonly issued: string[];
  close(): Promise<void>;
}

/** One request as the double saw it: no credential, only which kind was presented. */
export interface RecordedCall {
  method: string;
  path: string;
  credential: "pat" | "app-jwt" | "installation" | "none" | "invalid";
  body?: unknown;
}

/** A canned failure. */
export interface Fault {
  method?: string;
  path: string | RegExp;
  status: number;
  headers?: Record<string, string>;
  /** Default: a GitHub-shaped error body carrying {@link doubleErrorCanary}, which must never be echoed. */
  body?: unknown;
  /** Wait this long before answering. */
  delayMs?: number;
  times?: number;
}

/** Text inside every error body the double sends: the broker must never pass it on. */
export const doubleErrorCanary = "github-double-error-body-canary";

/** A GitHub App's identity for the double: the private key in both PEM forms GitHub tools produce. */
export interface AppKeys {
  appId: string;
  /** `-----BEGIN RSA PRIVATE KEY-----`, what GitHub's "Generate a private key" downloads. */
  privateKeyPkcs1: string;
  /** `-----BEGIN PRIVATE KEY-----`. */
  privateKeyPkcs8: string;
  publicKey: KeyObject;
}

/** Options of {@link startGitHubApiDouble}. */
export interface GitHubApiDoubleOptions {
  /** Clock for `expires_at` and installation-token expiry. Default: `Date.now`. */
  clock?: () => number;
  /** Organisations that exist (lower case). Default: `["octo-org"]`. */
  orgs?: string[];
  /** Repositories that exist, `owner/repo` (lower case). Default: `["octo-org/octo-repo", "octo-org/payroll", "octocat/hello"]`. */
  repos?: string[];
  /** Enterprises that exist. Default: `["octo-corp"]`. */
  enterprises?: string[];
  /** Owners where the App is installed → installation id. Default: `{ "octo-org": 4242, octocat: 4343 }`. */
  installations?: Record<string, number>;
  /**
   * Renamed or transferred repositories: old `owner/repo` → current `owner/repo` (lower case). Every call
   * under the old name is redirected; the current name only picks the repository's id.
   */
  renamed?: Record<string, string>;
  /** Scopes the credential may not manage (403 without rate-limit headers). */
  forbidden?: string[];
  /** Runner groups that exist. Default: `[1]`. */
  runnerGroups?: number[];
  /** App keys to use (generating an RSA key takes a moment; share one across doubles). */
  app?: AppKeys;
}

/** Generates a GitHub App's key pair and id. */
export function createAppKeys(appId = "123456"): AppKeys {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    appId,
    privateKeyPkcs1: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    privateKeyPkcs8: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey,
  };
}

/** Starts the double on 127.0.0.1 with a free port. */
export async function startGitHubApiDouble(options: GitHubApiDoubleOptions = {}): Promise<GitHubApiDouble> {
  const clock = options.clock ?? Date.now;
  const app = options.app ?? createAppKeys();
  const pat = `ghp_${randomBytes(18).toString("base64url")}`;
  const orgs = new Set(options.orgs ?? ["octo-org"]);
  const repos = new Set(options.repos ?? ["octo-org/octo-repo", "octo-org/payroll", "octocat/hello"]);
  const enterprises = new Set(options.enterprises ?? ["octo-corp"]);
  const installations = new Map(Object.entries(options.installations ?? { "octo-org": 4242, octocat: 4343 }));
  const forbidden = new Set(options.forbidden ?? []);
  const renamed = new Map(Object.entries(options.renamed ?? {}));
  const runnerGroups = new Set(options.runnerGroups ?? [1]);
  const installationTokens = new Map<string, { installationId: number; expiresAtMs: number }>();
  const runnerNames = new Map<string, Set<string>>();
  const calls: RecordedCall[] = [];
  const issued: string[] = [];
  let faults: (Fault & { remaining: number })[] = [];
  let remaining = 5000;
  let nextRunnerId = 1;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      void handle(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        if (!res.headersSent) send(res, 500, { message: `double failed: ${String(error)}` });
      });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> {
    const method = req.method ?? "";
    const path = (req.url ?? "").split("?")[0]!;
    const credential = await identify(req.headers.authorization);
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        body = raw.toString("utf8");
      }
    }
    calls.push({ method, path, credential: credential.kind, ...(body === undefined ? {} : { body }) });

    const fault = faults.find(
      (candidate) =>
        candidate.remaining > 0 &&
        (candidate.method === undefined || candidate.method === method) &&
        (typeof candidate.path === "string" ? candidate.path === path : candidate.path.test(path)),
    );
    if (fault !== undefined) {
      fault.remaining--;
      if (fault.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (res.destroyed) return;
      const headers = { ...rateHeaders(), ...fault.headers };
      return send(res, fault.status, fault.body ?? errorBody(fault.status), headers);
    }

    const moved = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
    const current = moved === null ? undefined : renamed.get(`${moved[1]}/${moved[2]}`.toLowerCase());
    if (moved !== null && current !== undefined) {
      const location = `http://${req.headers.host}/repositories/${repositoryId(current)}${moved[3] ?? ""}`;
      const status = method === "GET" ? 301 : 307;
      const message = status === 301 ? "Moved Permanently" : "Temporary Redirect";
      const documentation_url = "https://docs.github.com/rest";
      return send(res, status, { message, url: location, documentation_url }, { ...rateHeaders(), location });
    }

    if (method === "GET" && path === "/rate_limit") {
      if (credential.kind !== "pat" && credential.kind !== "installation") return unauthorized(res);
      const core = {
        limit: 5000,
        remaining,
        reset: resetSeconds(),
        used: 5000 - remaining,
        resource: "core",
      };
      return send(res, 200, { resources: { core }, rate: core });
    }
    if (method === "GET" && path === "/app") {
      if (credential.kind !== "app-jwt") return unauthorized(res);
      return send(res, 200, { id: Number(app.appId), slug: "tollgate-test", name: "tollgate test" });
    }
    const tokenExchange = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    if (method === "POST" && tokenExchange) {
      if (credential.kind !== "app-jwt") return unauthorized(res);
      const installationId = Number(tokenExchange[1]);
      if (![...installations.values()].includes(installationId)) return send(res, 404, errorBody(404));
      const token = `ghs_${randomBytes(18).toString("base64url")}`;
      const expiresAtMs = clock() + 60 * 60_000;
      installationTokens.set(token, { installationId, expiresAtMs });
      issued.push(token);
      return send(res, 201, {
        token,
        expires_at: new Date(expiresAtMs).toISOString().replace(/\.\d{3}Z$/, "Z"),
        permissions: { organization_self_hosted_runners: "write", administration: "write" },
        repository_selection: "all",
      });
    }
    const installation = /^\/(?:repos\/([^/]+)\/([^/]+)|orgs\/([^/]+))\/installation$/.exec(path);
    if (method === "GET" && installation) {
      if (credential.kind !== "app-jwt") return unauthorized(res);
      const owner = (installation[1] ?? installation[3])!.toLowerCase();
      const exists =
        installation[3] !== undefined
          ? orgs.has(owner)
          : repos.has(`${owner}/${installation[2]!.toLowerCase()}`);
      const id = installations.get(owner);
      if (!exists || id === undefined) return send(res, 404, errorBody(404));
      return send(res, 200, {
        id,
        account: { login: owner },
        app_id: Number(app.appId),
        target_type: "Organization",
      });
    }

    const runners =
      /^\/(repos\/[^/]+\/[^/]+|orgs\/[^/]+|enterprises\/[^/]+)\/actions\/runners\/(registration-token|remove-token|generate-jitconfig)$/.exec(
        path,
      );
    if (method === "POST" && runners) {
      if (credential.kind === "none" || credential.kind === "invalid" || credential.kind === "app-jwt") {
        return unauthorized(res);
      }
      const [kind, ...rest] = runners[1]!.split("/");
      const scope = rest.join("/").toLowerCase();
      const exists =
        kind === "repos" ? repos.has(scope) : kind === "orgs" ? orgs.has(scope) : enterprises.has(scope);
      if (!exists) return send(res, 404, errorBody(404));
      // Installation tokens cannot manage enterprise runners, and only reach their own installation's owner.
      if (credential.kind === "installation") {
        const owner = scope.split("/")[0]!;
        if (kind === "enterprises" || installations.get(owner) !== credential.installationId) {
          return send(res, 403, errorBody(403));
        }
      }
      const scopeText = kind === "enterprises" ? `enterprise:${scope}` : scope;
      if (forbidden.has(scopeText)) return send(res, 403, errorBody(403));
      if (runners[2] === "generate-jitconfig") return jitConfig(res, scopeText, body);
      const token = randomBytes(15).toString("hex").toUpperCase().slice(0, 29);
      issued.push(token);
      const expiresAt = new Date(clock() + 60 * 60_000).toISOString();
      return send(res, 201, { token, expires_at: expiresAt });
    }
    return send(res, 404, errorBody(404));
  }

  function jitConfig(res: ServerResponse, scope: string, body: unknown): void {
    const settings = body as
      | { name?: unknown; runner_group_id?: unknown; labels?: unknown; work_folder?: unknown }
      | undefined;
    const valid =
      typeof settings?.name === "string" &&
      typeof settings.runner_group_id === "number" &&
      Array.isArray(settings.labels) &&
      settings.labels.length >= 1 &&
      settings.labels.length <= 100 &&
      (settings.work_folder === undefined || typeof settings.work_folder === "string");
    if (!valid) {
      send(res, 422, errorBody(422));
      return;
    }
    if (!runnerGroups.has(settings.runner_group_id as number)) {
      send(res, 422, errorBody(422));
      return;
    }
    const names = runnerNames.get(scope) ?? new Set<string>();
    runnerNames.set(scope, names);
    const name = settings.name as string;
    if (names.has(name)) {
      send(res, 409, errorBody(409));
      return;
    }
    names.add(name);
    const id = nextRunnerId++;
    const encoded = Buffer.from(
      JSON.stringify({
        ".runner": randomBytes(24).toString("base64"),
        ".credentials": randomBytes(24).toString("base64"),
      }),
    ).toString("base64");
    issued.push(encoded);
    send(res, 201, {
      runner: {
        id,
        name,
        os: "unknown",
        status: "offline",
        busy: false,
        runner_group_id: settings.runner_group_id,
        labels: (settings.labels as string[]).map((label, index) => ({
          id: index + 1,
          name: label,
          type: "custom",
        })),
      },
      encoded_jit_config: encoded,
    });
  }

  async function identify(
    header: string | undefined,
  ): Promise<{ kind: RecordedCall["credential"]; installationId?: number }> {
    if (header === undefined) return { kind: "none" };
    const match = /^(?:bearer|token) (.+)$/i.exec(header.trim());
    if (!match) return { kind: "invalid" };
    const token = match[1]!;
    if (token === pat) return { kind: "pat" };
    const installation = installationTokens.get(token);
    if (installation !== undefined) {
      return installation.expiresAtMs > clock()
        ? { kind: "installation", installationId: installation.installationId }
        : { kind: "invalid" };
    }
    if (token.split(".").length === 3) {
      try {
        const { payload } = await jwtVerify(token, app.publicKey, {
          algorithms: ["RS256"],
          issuer: app.appId,
          clockTolerance: 60,
        });
        // GitHub refuses App JWTs that live longer than ten minutes.
        if (
          typeof payload.exp === "number" &&
          typeof payload.iat === "number" &&
          payload.exp - payload.iat <= 600
        ) {
          return { kind: "app-jwt" };
        }
      } catch {
        // Not signed by the App's key: an invalid credential.
      }
    }
    return { kind: "invalid" };
  }

  function unauthorized(res: ServerResponse): void {
    send(res, 401, errorBody(401));
  }

  /** A stable id per repository name, as in GitHub's `/repositories/{id}` redirect targets. */
  function repositoryId(name: string): number {
    return 1_000 + [...repos, name].indexOf(name);
  }

  function resetSeconds(): number {
    return Math.floor(clock() / 1000) + 3600;
  }

  function rateHeaders(): Record<string, string> {
    return {
      "x-ratelimit-limit": "5000",
      "x-ratelimit-remaining": String(remaining),
      "x-ratelimit-reset": String(resetSeconds()),
      "x-ratelimit-used": String(5000 - remaining),
      "x-ratelimit-resource": "core",
    };
  }

  function send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = rateHeaders(),
  ): void {
    if (remaining > 0) remaining--;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      "x-github-api-version-selected": "2022-11-28",
      ...headers,
    });
    res.end(text);
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pat,
    app,
    calls,
    issued,
    count: (method, path) =>
      calls.filter(
        (call) =>
          call.method === method && (typeof path === "string" ? call.path === path : path.test(call.path)),
      ).length,
    fault(fault) {
      faults.push({ ...fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
    },
    clearFaults() {
      faults = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function errorBody(status: number): { message: string; documentation_url: string; status: string } {
  const messages: Record<number, string> = {
    401: "Bad credentials",
    403: "Resource not accessible by integration",
    404: "Not Found",
    409: "Already exists - A runner with the name already exists.",
    422: "Validation Failed",
  };
  return {
    message: `${messages[status] ?? "Server Error"} (${doubleErrorCanary})`,
    documentation_url: "https://docs.github.com/rest",
    status: String(status),
  };
}
