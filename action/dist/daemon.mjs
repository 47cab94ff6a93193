import {
  describeClientError,
  formatHostPort,
  parseForwardSpec,
  parseListenAddress,
  prepareClient,
  startLocalProxy,
  startPortForwards
} from "./chunk-QF6Z6VOP.mjs";

// action/src/run-daemon.ts
async function runDaemon(config, env) {
  const log = (line) => process.stderr.write(`${(/* @__PURE__ */ new Date()).toISOString()} ${line}
`);
  const send = (message) => new Promise((resolve) => {
    if (process.send === void 0) {
      process.stdout.write(`${JSON.stringify(message)}
`);
      resolve();
      return;
    }
    process.send(message, void 0, {}, () => resolve());
  });
  let proxy;
  let forwards;
  const stop = async () => {
    await Promise.all([proxy?.close(), forwards?.close()]);
  };
  try {
    const { gateway, tokens } = await prepareClient({
      gatewayUrl: config.gatewayUrl,
      audience: config.audience,
      ...config.ca === void 0 ? {} : { caPem: config.ca },
      ...config.caFile === void 0 ? {} : { caFile: config.caFile },
      env,
      // The main step asked the gateway already, before it started this process.
      checkToken: false
    });
    if (config.proxyListen !== void 0) {
      proxy = await startLocalProxy({
        gateway,
        tokens,
        listen: parseListenAddress(config.proxyListen),
        verbose: config.verbose,
        log: (line) => log(`proxy: ${line}`)
      });
      log(`proxy: listening on ${proxy.url}`);
    }
    if (config.forwards.length > 0) {
      forwards = await startPortForwards({
        forwards: config.forwards.map(parseForwardSpec),
        gateway,
        tokens,
        verbose: config.verbose,
        log: (line) => log(`forward: ${line}`)
      });
      for (const listener of forwards.listeners) {
        log(
          `forward: ${formatHostPort(listener.address.host, listener.address.port)} -> ${listener.destination}`
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
  const stopped = new Promise((resolve) => {
    const onSignal = (signal) => {
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
      destination: listener.destination
    }))
  });
  process.channel?.unref();
  await stopped;
  log("stopped");
}

// action/src/daemon.ts
await runDaemon(JSON.parse(process.argv[2] ?? "{}"), process.env);
