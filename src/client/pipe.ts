import { isIP, type Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { TollgateError } from "../errors/index.js";
import type { GatewayTarget } from "./gateway-target.js";
import { openGatewayTunnel } from "./gateway-tunnel.js";
import { checkTokenWithGateway } from "./gateway-whoami.js";
import { formatHostPort } from "./listen-address.js";
import type { ClientLog } from "./local-proxy.js";
import { type ClientSettings, describeClientError, prepareClient } from "./prepare-client.js";
import { describeRefusal } from "./relay-errors.js";
import type { TokenSource } from "./token-source.js";

/**
 * Parses the destination of `tollgate pipe`: `HOST:PORT`, `[IPV6]:PORT`, or an IPv6 literal without
 * brackets followed by `:PORT`, which is what ssh's `%h:%p` gives for `ssh ::1`. Returns `host:port` as
 * the gateway reads a CONNECT target (IPv6 in brackets).
 *
 * @example
 * parsePipeDestination("git.internal:22"); // "git.internal:22"
 * parsePipeDestination("fd00::5:22");      // "[fd00::5]:22"
 */
export function parsePipeDestination(text: string): string {
  const invalid = (reason: string) =>
    new TollgateError("TG_CONFIG_INVALID", `pipe ${JSON.stringify(text)}: ${reason} (expected HOST:PORT)`);
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text);
  const colon = text.lastIndexOf(":");
  const [host, portText] =
    bracketed !== null ? [bracketed[1]!, bracketed[2]!] : [text.slice(0, colon), text.slice(colon + 1)];
  if (colon === -1 || host.length === 0) throw invalid("no port");
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65_535) {
    throw invalid(`port ${portText} is not a port number (1-65535)`);
  }
  const hostName = /^[A-Za-z0-9._-]+$/.test(host) && !host.includes(":");
  if (!hostName && isIP(host) !== 6) throw invalid(`${host} is not a host name or IP address`);
  return formatHostPort(host, Number(portText));
}

/** How `tollgate pipe` runs: one tunnel, carried on two byte streams. */
export interface PipeOptions {
  readonly gateway: GatewayTarget;
  readonly tokens: TokenSource;
  /** The audience asked for, named when the gateway refuses the token. */
  readonly audience: string;
  /** `host:port` (see {@link parsePipeDestination}). */
  readonly destination: string;
  /** What goes to the destination (standard input). */
  readonly input: Readable;
  /** What the destination sends (standard output). Nothing else is ever written to it. */
  readonly output: Writable;
  readonly log: ClientLog;
  readonly verbose?: boolean;
  /** Until the gateway answers the CONNECT (default 60 s). */
  readonly gatewayTimeoutMs?: number;
}

/**
 * Opens one CONNECT tunnel to `destination` and joins it to `input` and `output`, for programs that run
 * a command as their transport: `ssh -o ProxyCommand='tollgate pipe %h:%p …'`. No local port is opened,
 * and ssh records the host key under the real host name (with `tollgate forward` it sees 127.0.0.1).
 *
 * Resolves with the exit code: 0 once the tunnel has closed; 1 when the gateway refused (the reason, with
 * the gateway's code and `request_id`, is logged; on a 407 the gateway is also asked why it refused the
 * token) or could not be reached. An end of `input` is passed on as a half-close, so the destination's
 * answer still arrives.
 *
 * @example
 * process.exitCode = await runPipe({ gateway, tokens, audience, destination: "git.internal:22",
 *   input: process.stdin, output: process.stdout, log: (line) => process.stderr.write(`${line}\n`) });
 */
export async function runPipe(options: PipeOptions): Promise<number> {
  const { destination, input, output, log } = options;
  let token: string;
  try {
    token = await options.tokens.token();
    const outcome = await openGatewayTunnel(options.gateway, destination, token, {
      timeoutMs: options.gatewayTimeoutMs ?? 60_000,
    });
    if (!outcome.ok) {
      log(`${destination}: ${describeRefusal(outcome.refusal)}`);
      // 407 says only that the token failed; the gateway tells why when asked with the same token.
      if (outcome.refusal.status === 407) {
        const check = await checkTokenWithGateway(options.gateway, token, {
          audience: options.audience,
        }).catch((error: unknown) => error);
        if (check instanceof TollgateError) log(`${check.code}: ${check.message}`);
      }
      return 1;
    }
    if (options.verbose) log(`${destination}: tunnel open`);
    return await carry(outcome.socket, outcome.head, input, output, log, destination);
  } catch (error) {
    log(
      `${destination}: ${error instanceof TollgateError ? `${error.code}: ${error.message}` : "internal error"}`,
    );
    return 1;
  }
}

/** Joins the tunnel to the two streams until the destination's side is over. */
function carry(
  socket: Socket,
  head: Buffer,
  input: Readable,
  output: Writable,
  log: ClientLog,
  destination: string,
): Promise<number> {
  return new Promise((resolve) => {
    let lost = false;
    socket.on("error", () => {
      lost = true;
    });
    // The reader of our output went away (ssh exited): nobody is left to carry bytes for.
    output.on("error", () => socket.destroy());
    if (head.length > 0) output.write(head);
    // The end of input becomes the tunnel's half-close (FIN), as ssh and `nc -N` expect.
    input.pipe(socket);
    socket.pipe(output, { end: false });
    socket.once("close", () => {
      input.unpipe(socket);
      // Nothing more will be read: let go of standard input so the process can exit.
      input.destroy();
      if (lost) log(`${destination}: the tunnel was cut`);
      output.end(() => resolve(lost ? 1 : 0));
    });
  });
}

/** `tollgate pipe` as a whole, for the CLI and the action's `pipe.mjs`: settings in, exit code out. */
export interface PipeCommandOptions {
  /** The destination argument as typed (`%h:%p`). */
  readonly target: string;
  readonly settings: ClientSettings;
  readonly input: Readable;
  readonly output: Writable;
  readonly log: ClientLog;
  readonly verbose?: boolean;
}

/**
 * Parses the destination, fetches a token and runs {@link runPipe}. Exit code 2 for settings that cannot
 * work (a malformed destination or gateway URL, an unreadable CA), 1 for a refusal or an unreachable
 * gateway or token endpoint, 0 once the tunnel closed. No whoami round trip per connection: the tunnel's
 * own refusal says what is wrong (and on a 407, runPipe asks the gateway why).
 */
export async function runPipeCommand(options: PipeCommandOptions): Promise<number> {
  try {
    const destination = parsePipeDestination(options.target);
    const { gateway, tokens } = await prepareClient({ ...options.settings, checkToken: false });
    return await runPipe({
      gateway,
      tokens,
      audience: options.settings.audience,
      destination,
      input: options.input,
      output: options.output,
      log: options.log,
      verbose: options.verbose === true,
    });
  } catch (error) {
    options.log(describeClientError(error));
    return error instanceof TollgateError && error.code === "TG_CONFIG_INVALID" ? 2 : 1;
  }
}
