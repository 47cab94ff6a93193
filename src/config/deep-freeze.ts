/**
 * Freezes a compiled configuration all the way down, so that request handling cannot change it by
 * accident (for example by appending to `route.upstream.pathname` while building a target URL). Maps,
 * Sets and URLs keep internal state that `Object.freeze` does not protect, so their mutators are
 * replaced on the instance by ones that throw.
 */
export function deepFreeze<T>(value: T, seen: WeakSet<object> = new WeakSet()): T {
  if (typeof value !== "object" || value === null || seen.has(value)) return value;
  seen.add(value);
  if (value instanceof URL) return freezeUrl(value) as T;
  if (value instanceof Map) {
    for (const [key, entry] of value) {
      deepFreeze(key, seen);
      deepFreeze(entry, seen);
    }
    blockMethods(value, ["set", "delete", "clear"]);
  } else if (value instanceof Set) {
    for (const entry of value) deepFreeze(entry, seen);
    blockMethods(value, ["add", "delete", "clear"]);
  } else {
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key], seen);
  }
  return Object.freeze(value);
}

const urlSetters = [
  "href",
  "protocol",
  "username",
  "password",
  "host",
  "hostname",
  "port",
  "pathname",
  "search",
  "hash",
];

function freezeUrl(url: URL): URL {
  for (const property of urlSetters) {
    const current = url[property as keyof URL];
    Object.defineProperty(url, property, {
      get: () => current,
      set: () => {
        throw new TypeError(`Cannot assign to ${property} of a frozen configuration URL`);
      },
      enumerable: false,
    });
  }
  blockMethods(url.searchParams, ["append", "delete", "set", "sort"]);
  Object.freeze(url.searchParams);
  return Object.freeze(url);
}

function blockMethods(target: object, names: readonly string[]): void {
  for (const name of names) {
    Object.defineProperty(target, name, {
      value: () => {
        throw new TypeError(`Cannot call ${name} on a frozen configuration object`);
      },
    });
  }
}
