import { connect, createServer } from "node:net";
import { startGitHttpServer } from "../client/git-http-server.js";

/**
 * A git smart-HTTP server for the network-namespace proof (connector-netns.test.ts), run *inside* the
 * namespace as a program of its own: the test bundles this file with esbuild and starts it with
 * `ip netns exec`. It serves the repositories under argv[2] with the tests' `git http-backend` server
 * (which listens on the namespace's loopback) and exposes it on the private address argv[3], port argv[4],
 * the one address the connector is told to reach. Prints `git ready` once listening.
 */
const [projectRoot, host, port] = process.argv.slice(2);
if (projectRoot === undefined || host === undefined || port === undefined) {
  throw new Error("usage: namespace-git-server PROJECT_ROOT HOST PORT");
}
const git = await startGitHttpServer(projectRoot);
const front = createServer((socket) => {
  const backend = connect(git.port, "127.0.0.1");
  socket.pipe(backend).pipe(socket);
  socket.on("error", () => backend.destroy());
  backend.on("error", () => socket.destroy());
});
front.listen(Number(port), host, () => console.log("git ready"));
process.once("SIGTERM", () => {
  front.close();
  void git.close().then(() => process.exit(0));
});
