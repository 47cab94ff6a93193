import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Listens on `host:port`. `::` means every interface, IPv6 and IPv4 alike (a dual-stack socket), as Go's
 * `:PORT` and Node's own default do; on a host without IPv6 it falls back to every IPv4 interface.
 */
export async function listenOn(server: Server, port: number, host: string): Promise<AddressInfo> {
  try {
    return await listenOnce(server, port, host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (host !== "::" || (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL")) throw error;
    return listenOnce(server, port, "0.0.0.0");
  }
}

function listenOnce(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise<AddressInfo>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
