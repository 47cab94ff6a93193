// The reference proxy: Debian's nginx with one worker and keep-alive to the upstream, started in the
// foreground from a generated configuration in the run's temporary folder.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeLoopbackPort, startProcess } from "./processes.mjs";

/**
 * The nginx configuration the comparison uses. `keepalive_requests` is raised on both sides because Node's
 * servers and undici never close a keep-alive connection after N requests; with nginx's default (1000) wrk
 * would reconnect every thousand requests against nginx only.
 *
 * @param {{ dir: string, port: number, upstreamPort: number }} options
 */
export function nginxConfig({ dir, port, upstreamPort }) {
  return `worker_processes 1;
daemon off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "nginx-error.log")} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "client_body")};
  proxy_temp_path ${join(dir, "proxy_temp")};
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * Starts nginx proxying to the upstream; resolves with its port (readiness is checked by the caller).
 *
 * @param {{ dir: string, upstreamPort: number }} options
 */
export async function startNginx({ dir, upstreamPort }) {
  const port = await freeLoopbackPort();
  const nginxDir = join(dir, "nginx");
  mkdirSync(nginxDir, { recursive: true });
  const configPath = join(nginxDir, "nginx.conf");
  writeFileSync(configPath, nginxConfig({ dir: nginxDir, port, upstreamPort }));
  // -e: the error log before the configuration is read (the default path may not be writable).
  const started = startProcess("nginx", [
    "-p",
    nginxDir,
    "-c",
    configPath,
    "-e",
    join(nginxDir, "early.log"),
  ]);
  return { started, port };
}
