/**
 * What `NO_PROXY` holds when the action exports the proxy: loopback, the gateway itself, and the GitHub
 * services the runner and later actions talk to (checkout, cache, artifacts, the token endpoint) — those
 * must not go through the gateway, which would rightly refuse them. Entries already in `NO_PROXY` and
 * the `no-proxy` input are kept.
 *
 * @example
 * noProxyList(process.env, "gateway.example.com", []); // "localhost,127.0.0.1,::1,gateway.example.com,github.com,…"
 */
export function noProxyList(env: NodeJS.ProcessEnv, gatewayHost: string, extra: readonly string[]): string {
  const entries = [
    ...splitList(env.NO_PROXY ?? env.no_proxy ?? ""),
    "localhost",
    "127.0.0.1",
    "::1",
    gatewayHost,
    ...[
      env.GITHUB_SERVER_URL,
      env.GITHUB_API_URL,
      env.ACTIONS_RUNTIME_URL,
      env.ACTIONS_RESULTS_URL,
      env.ACTIONS_CACHE_URL,
      env.ACTIONS_ID_TOKEN_REQUEST_URL,
    ].flatMap((url) => hostOf(url)),
    // github.com's own services, and the storage that artifacts and caches are uploaded to.
    "github.com",
    ".github.com",
    ".githubusercontent.com",
    ".actions.githubusercontent.com",
    ".blob.core.windows.net",
    ...extra,
  ];
  return [...new Set(entries.filter((entry) => entry.length > 0))].join(",");
}

function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter((entry) => entry.length > 0);
}

function hostOf(url: string | undefined): string[] {
  if (url === undefined || url === "") return [];
  try {
    const hostname = new URL(url).hostname;
    return [hostname.startsWith("[") ? hostname.slice(1, -1) : hostname];
  } catch {
    return [];
  }
}
