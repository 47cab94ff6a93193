import { isIP } from "node:net";
import { TollgateError } from "../errors/index.js";

/** The gateway the client talks to, parsed once. */
export interface GatewayTarget {
  /** `https://gateway.example.com` or `http://127.0.0.1:8080` (origin only, for messages). */
  readonly origin: string;
  /** `host[:port]` as the `Host` header of a request to the gateway's own routes. */
  readonly authority: string;
  readonly tls: boolean;
  /** Host name or IP literal, without brackets. */
  readonly host: string;
  readonly port: number;
  /** TLS server name (SNI) and the name the certificate must carry; absent for IP literals. */
  readonly servername: string | undefined;
  /** Extra trusted CA certificates (PEM) for a gateway behind a private CA; the system roots stay trusted. */
  readonly ca: string | undefined;
}

/**
 * Parses `--gateway`. Only `http:` and `https:` origins; credentials in the URL are refused (the token is
 * the credential, and a password in a URL ends up in shell history and logs); a path other than `/` is
 * refused (CONNECT and forward requests have no path prefix).
 *
 * @example
 * parseGatewayUrl("https://gateway.example.com", { ca: pemText });
 */
export function parseGatewayUrl(text: string, options: { ca?: string } = {}): GatewayTarget {
  const invalid = (reason: string) => new TollgateError("TG_CONFIG_INVALID", `--gateway ${text}: ${reason}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid("not a URL (expected https://host[:port])");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw invalid("use an http:// or https:// URL");
  if (url.username !== "" || url.password !== "") {
    throw invalid("must not carry credentials; the OIDC token is the credential");
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw invalid("must be an origin without a path or query (https://host[:port])");
  }
  const tls = url.protocol === "https:";
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  if (options.ca !== undefined && !tls) throw invalid("--ca applies to an https:// gateway only");
  return Object.freeze({
    origin: url.origin,
    authority: url.host,
    tls,
    host,
    port,
    servername: tls && isIP(host) === 0 ? host : undefined,
    ca: options.ca,
  });
}
