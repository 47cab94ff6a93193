import type { KeyObject } from "node:crypto";
import { chmod, readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { createLogger, createRedactor } from "../../audit/index.js";
import { generateConnectorKey, parsePrivateKey, publicKeyOf, startConnector } from "../../connector/index.js";
import { isLoopbackHostname } from "../../oidc/index.js";
import { parseDestinationPattern } from "../../tunnel/index.js";
import type { DestinationPattern } from "../../tunnel/types.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes, UsageError } from "../exit-codes.js";
import { untilStopSignal } from "../load-or-report.js";

interface ConnectorOptions {
  edge: string[];
  pool?: string;
  key?: string;
  tokenFile?: string;
  allow: string[];
  ca?: string;
}

/**
 * `tollgate connector`: runs inside a private network, dials out to the edge(s) and carries their `via`
 * tunnels to the destinations it allows. `tollgate connector keygen` makes its key pair.
 */
export function registerConnector(program: Command, context: CommandContext): void {
  const connector = program
    .command("connector")
    .description(
      "Run an outbound-only connector: dial the edge from inside the private network and carry its `via` tunnels to the destinations --allow lists.",
    )
    .option("--edge <url>", "an edge to connect to, https://HOST[:PORT] (repeatable)", collect, [])
    .option("--pool <name>", "the connector pool to join (the edge's connectors[].name)")
    .option("--key <file>", "the private key file written by `tollgate connector keygen`")
    .option(
      "--token-file <file>",
      "instead of --key: a file with an OIDC token from the platform (a Kubernetes projected service-account token), read again at every connect",
    )
    .option(
      "--allow <host:port>",
      "a destination this connector may reach, as tunnel destinations are written (repeatable; required)",
      collect,
      [],
    )
    .option("--ca <file>", "PEM certificates to trust for the edge, beside the system's")
    .option(
      "--config <file>",
      "a YAML file with edges, pool, key or token_file, allow and ca (the same as the flags; flags given add to its lists and replace its single values)",
    )
    .action(async (flags: ConnectorOptions & { config?: string }) => {
      const options =
        flags.config === undefined ? flags : mergeConfig(await readConnectorConfig(flags.config), flags);
      const edges = options.edge.map((text) => edgeUrl(text));
      if (edges.length === 0) throw new UsageError("give at least one --edge https://HOST[:PORT]");
      if (options.pool === undefined) throw new UsageError("give --pool NAME (the edge's connectors[].name)");
      if ((options.key === undefined) === (options.tokenFile === undefined)) {
        throw new UsageError(
          "give --key FILE (from `tollgate connector keygen`) or --token-file FILE (an OIDC token from the platform), not both",
        );
      }
      if (options.allow.length === 0) {
        throw new UsageError(
          "give at least one --allow HOST:PORT: a connector carries nothing it does not allow",
        );
      }
      const allow = options.allow.map((text) => allowPattern(text));
      const credential: { tokenFile: string } | { privateKey: KeyObject } =
        options.key === undefined
          ? { tokenFile: await tokenFile(options.tokenFile!, edges) }
          : { privateKey: await privateKeyFile(options.key) };
      const ca =
        options.ca === undefined
          ? undefined
          : await readFile(options.ca, "utf8").catch(() => {
              throw new UsageError(`cannot read the CA file ${options.ca}`);
            });
      // A password in HTTPS_PROXY / HTTP_PROXY is a credential: no log line may carry it.
      const redactor = createRedactor();
      for (const edge of edges) {
        const password = egressProxy(edge, context.env)?.password;
        if (password !== undefined && password !== "") redactor.register(decodeURIComponent(password));
      }
      const logger = createLogger({ redactor, level: context.env.LOG_LEVEL });
      logger.info(
        {
          component: "connector",
          pool: options.pool,
          ...("privateKey" in credential
            ? { key: publicKeyOf(credential.privateKey) }
            : { token_file: credential.tokenFile }),
          edges: edges.map((e) => e.origin),
        },
        "connector starting",
      );
      const running = startConnector({
        edges,
        pool: options.pool,
        ...credential,
        allow,
        logger,
        proxyFor: (edge) => egressProxy(edge, context.env),
        ...(ca === undefined ? {} : { ca }),
      });
      const signal = await untilStopSignal();
      logger.info({ component: "connector", signal }, "connector stopping");
      await running.close();
      context.setExitCode(exitCodes.ok);
    });

  connector
    .command("keygen")
    .description(
      "Write a new Ed25519 private key (mode 0600) and print its public key for the edge's connectors[].public_keys.",
    )
    .requiredOption("--out <file>", "where to write the private key (an existing file is not overwritten)")
    .action(async (options: { out: string }) => {
      const key = generateConnectorKey();
      await writeFile(options.out, key.privateKeyPem, { mode: 0o600, flag: "wx" }).catch(
        (error: NodeJS.ErrnoException) => {
          throw new UsageError(
            error.code === "EEXIST"
              ? `${options.out} exists; keygen never overwrites a key`
              : `cannot write ${options.out}`,
          );
        },
      );
      // The mode given to open() is masked by the umask; the key must be the owner's alone whatever it is.
      await chmod(options.out, 0o600);
      context.stdout.write(`wrote the private key to ${options.out}\n`);
      context.stdout.write(`public key (for connectors[].public_keys): ${key.publicKey}\n`);
      context.setExitCode(exitCodes.ok);
    });
}

async function privateKeyFile(file: string): Promise<KeyObject> {
  const pem = await readFile(file, "utf8").catch(() => {
    throw new UsageError(`cannot read the key file ${file}`);
  });
  try {
    return parsePrivateKey(pem);
  } catch {
    throw new UsageError(`${file} is not an Ed25519 private key (make one with tollgate connector keygen)`);
  }
}

/**
 * The token file, checked readable now (it is read again at every connect). A bearer token is sent only
 * over TLS, or over plain HTTP to an edge on this machine.
 */
async function tokenFile(file: string, edges: readonly URL[]): Promise<string> {
  const plain = edges.find((edge) => edge.protocol === "http:" && !isLoopbackHostname(edge.hostname));
  if (plain !== undefined) {
    throw new UsageError(
      `--edge ${plain.origin}: a token is sent only over https:// (http:// only for an edge on loopback)`,
    );
  }
  await readFile(file, "utf8").catch(() => {
    throw new UsageError(`cannot read the token file ${file}`);
  });
  return file;
}

function edgeUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--edge ${text} is not a URL; write https://HOST[:PORT]`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new UsageError(`--edge ${text}: use https:// (http:// only for an edge on loopback)`);
  }
  return url;
}

function allowPattern(text: string): DestinationPattern {
  const parsed = parseDestinationPattern(text);
  if (!("pattern" in parsed)) throw new UsageError(`--allow ${text}: ${parsed.problem.message}`);
  return parsed.pattern;
}

/** `tollgate connector --config FILE`: the flags' values, in YAML. */
const connectorConfigSchema = z.strictObject({
  edges: z.array(z.string()).optional(),
  pool: z.string().optional(),
  key: z.string().optional(),
  token_file: z.string().optional(),
  allow: z.array(z.string()).optional(),
  ca: z.string().optional(),
});

async function readConnectorConfig(path: string): Promise<z.output<typeof connectorConfigSchema>> {
  const text = await readFile(path, "utf8").catch(() => {
    throw new UsageError(`cannot read the connector configuration ${path}`);
  });
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    throw new UsageError(`${path} is not YAML`);
  }
  const result = connectorConfigSchema.safeParse(parsed ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new UsageError(
      `${path}: ${issue?.path.join(".") || "the file"}: ${issue?.message ?? "invalid"} (keys: edges, pool, key, token_file, allow, ca)`,
    );
  }
  return result.data;
}

/** The file's values with the flags on top: lists add up, single values from flags win. */
function mergeConfig(
  file: z.output<typeof connectorConfigSchema>,
  flags: ConnectorOptions,
): ConnectorOptions {
  const pool = flags.pool ?? file.pool;
  // A credential given as a flag replaces the file's, whichever kind either is.
  const credentialFlag = flags.key !== undefined || flags.tokenFile !== undefined;
  const key = credentialFlag ? flags.key : file.key;
  const tokenFile = credentialFlag ? flags.tokenFile : file.token_file;
  const ca = flags.ca ?? file.ca;
  return {
    edge: [...(file.edges ?? []), ...flags.edge],
    allow: [...(file.allow ?? []), ...flags.allow],
    ...(pool === undefined ? {} : { pool }),
    ...(key === undefined ? {} : { key }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
    ...(ca === undefined ? {} : { ca }),
  };
}

/**
 * The proxy for the connection to `edge`, as curl and most tools read the environment: `HTTPS_PROXY` (or
 * `https_proxy`) for an https edge, `HTTP_PROXY` for an http one, unless `NO_PROXY` names the edge's host
 * (exactly, as a domain suffix such as `.example.com` or `example.com`, or `*`).
 */
export function egressProxy(edge: URL, env: NodeJS.ProcessEnv): URL | undefined {
  const text =
    edge.protocol === "https:" ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (text === undefined || text.trim() === "") return undefined;
  const host = edge.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const exclusions = (env.NO_PROXY ?? env.no_proxy ?? "")
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== "");
  for (const entry of exclusions) {
    if (entry === "*") return undefined;
    const domain = entry.replace(/^\*?\./, "").replace(/:\d+$/, "");
    if (host === domain || host.endsWith(`.${domain}`)) return undefined;
  }
  try {
    return new URL(text.includes("://") ? text : `http://${text}`);
  } catch {
    throw new UsageError(
      `the proxy ${edge.protocol === "https:" ? "HTTPS_PROXY" : "HTTP_PROXY"} is not a URL`,
    );
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
