import type { CompiledRoute, ProxyRoute } from "./types.js";

/** Finds the route for a request; built once per configuration, queried per request. */
export interface RouteTable<Route extends CompiledRoute = CompiledRoute> {
  /**
   * The route for a Host header and a path already normalised by {@link normalizeRequestPath}, or
   * `undefined`. The longest matching `pathPrefix` wins; at equal length a route bound to the request's
   * host beats a host-less one; at full equality the first route in the configuration wins.
   */
  match(host: string | undefined, path: string): Route | undefined;
  readonly routes: readonly Route[];
}

interface Candidate<Route> {
  readonly route: Route;
  /** Lower-case host without port and trailing dot, or undefined for any host. */
  readonly host: string | undefined;
}

/**
 * Builds the route table. Prefixes match on segment boundaries only: `/api` matches `/api` and
 * `/api/x` but never `/apix`. A prefix ending in `/` (`/artifacts/`) also matches the bare path without
 * it (`/artifacts`), so a client that omits the trailing slash reaches the same route instead of a 404
 * (the upstream decides what the bare path means).
 *
 * Every prefix is reduced to a key without its trailing `/`; a path is then looked up by walking its own
 * segment boundaries from the longest, one map lookup per level, so the cost does not grow with the number
 * of routes.
 *
 * @example
 * const table = createRouteTable(config.routes);
 * table.match("gateway.example.com:8080", "/artifacts/build.zip")?.name; // "artifacts"
 */
export function createRouteTable<Route extends CompiledRoute>(routes: readonly Route[]): RouteTable<Route> {
  const byKey = new Map<string, Candidate<Route>[]>();
  let longestKey = 0;
  let anyHostBound = false;
  for (const route of routes) {
    const key = prefixKey(route.pathPrefix);
    longestKey = Math.max(longestKey, key.length);
    const host = route.host === undefined ? undefined : normalizeHost(route.host);
    if (host !== undefined) anyHostBound = true;
    const list = byKey.get(key) ?? [];
    list.push({ route, host });
    byKey.set(key, list);
  }
  for (const list of byKey.values()) {
    // Stable sort: the configuration order breaks the remaining ties.
    list.sort(
      (a, b) =>
        b.route.pathPrefix.length - a.route.pathPrefix.length ||
        Number(b.host !== undefined) - Number(a.host !== undefined),
    );
  }

  function pick(key: string, host: string | undefined): Route | undefined {
    const list = byKey.get(key);
    if (list === undefined) return undefined;
    for (const candidate of list) {
      if (candidate.host === undefined || candidate.host === host) return candidate.route;
    }
    return undefined;
  }

  return {
    routes,
    match(hostHeader, path) {
      // Only pay for host normalisation when some route is bound to a host.
      const host = anyHostBound && hostHeader !== undefined ? normalizeHost(hostHeader) : undefined;
      if (path.charCodeAt(path.length - 1) !== 0x2f && path.length <= longestKey) {
        const found = pick(path, host);
        if (found !== undefined) return found;
      }
      for (let at = path.lastIndexOf("/", path.length - 1); at >= 0; at = path.lastIndexOf("/", at - 1)) {
        if (at <= longestKey) {
          const found = pick(path.slice(0, at), host);
          if (found !== undefined) return found;
        }
        if (at === 0) break;
      }
      return undefined;
    },
  };
}

/**
 * The path a route sends upstream before the upstream's base path is prepended: the route prefix removed
 * when `stripPrefix` is set, otherwise the path unchanged. Always starts with `/`.
 *
 * @example
 * upstreamPathFor({ pathPrefix: "/artifacts/", stripPrefix: true, … }, "/artifacts/a.zip"); // "/a.zip"
 */
export function upstreamPathFor(route: Pick<ProxyRoute, "pathPrefix" | "stripPrefix">, path: string): string {
  if (!route.stripPrefix) return path;
  const rest = path.slice(prefixKey(route.pathPrefix).length);
  return rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
}

/** `/artifacts/` and `/artifacts` both become `/artifacts`; `/` becomes the empty key that matches all. */
function prefixKey(prefix: string): string {
  return prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
}

/**
 * Lower-cases a Host header and removes its port (`[::1]:8080` → `[::1]`) and a trailing dot, which
 * names the same host in DNS.
 */
export function normalizeHost(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 0x5b) {
    const close = host.indexOf("]");
    if (close !== -1) end = close + 1;
  } else {
    const colon = host.indexOf(":");
    if (colon !== -1) end = colon;
  }
  if (host.charCodeAt(end - 1) === 0x2e) end--;
  return (end === host.length ? host : host.slice(0, end)).toLowerCase();
}
