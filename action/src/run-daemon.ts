import {
  describeClientError,
  formatHostPort,
  type LocalProxy,
  type PortForwards,
  parseForwardSpec,
  parseListenAddress,
  prepareClient,
  startLocalProxy,
  startPortForwards,
} from "../../src/client/index.js";
import type { DaemonConfig, DaemonMessage } from "./daemon-protocol.js";

/**
 * The background process of the action: the same client code as `tollgate proxy` and `tollgate forward`,
 * in one process. Reports readiness over IPC, then runs until SIGTERM (the post step) or SIGINT.
 * Its stdout/stderr go to a log file that the post step prints; nothing it logs carries a token.
 */
export async function runDaemon(config: DaemonConfig, env: NodeJS.ProcessEnv): Promise<void> {
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const send = (message: DaemonMessage) =>
    new Promise<void>((resolve) => {
      if (process.send === undefined) {
        process.stdout.write(`${JSON.stringify(message)}\n`);
        resolve();
        return;
      }
      process.send(message, undefined, {}, () => resolve());
    });
  let proxy: LocalProxy | undefined;
  let forwards: PortForwards | undefined;
  const stop = async () => {
    await Promise.all([proxy?.close(), forwards?.close()]);
  };
  try {
    const { gateway, tokens } = await prepareClient({
      gatewayUrl: config.gatewayUrl,
      audience: config.audience,
      ...(config.ca === undefined ? {} : { caPem: config.ca }),
      ...(config.caFile === undefined ? {} : { caFile: config.caFile }),
      env,
      // The main step asked the gateway already, before it started this process.
      checkToken: false,
    });
    if (config.proxyListen !== undefined) {
      proxy = await startLocalProxy({
        gateway,
        tokens,
        listen: parseListenAddress(config.proxyListen),
        verbose: config.verbose,
        log: (line) => log(`proxy: ${line}`),
      });
      log(`proxy: listening on ${proxy.url}`);
    }
    if (config.forwards.length > 0) {
      forwards = await startPortForwards({
        forwards: config.forwards.map(parseForwardSpec),
        gateway,
        tokens,
        verbose: config.verbose,
        log: (line) => log(`forward: ${line}`),
      });
      for (const listener of forwards.listeners) {
        log(
          `forward: ${formatHostPort(listener.address.host, listener.address.port)} -> ${listener.destination}`,
        );
      }
    }
  } catch (error) {
    log(`start-up failed: ${describeClientError(error)}`);
    await stop();
    await send({ ready: false, error: describeClientError(error) });
    process.exitCode = 1;
    return;
  }
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log(`${signal}: stopping`);
      void stop().then(resolve);
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  await send({
    ready: true,
    proxyUrl: proxy?.url,
    forwards: (forwards?.listeners ?? []).map((listener) => ({
      local: formatHostPort(listener.address.host, listener.address.port),
      destination: listener.destination,
    })),
  });
  // The main step disconnects after reading the message; an open channel must not keep anyone waiting.
  process.channel?.unref();
  await stopped;
  log("stopped");
}
