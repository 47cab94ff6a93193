import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Debian puts sshd in /usr/sbin, which is not on every PATH (not a non-root user's). */
export function sshdPath(): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/sbin"]) {
    if (dir !== "" && existsSync(join(dir, "sshd"))) return join(dir, "sshd");
  }
  throw new Error("sshd not found (the openssh-server package; .ci/run installs it)");
}

/** A real OpenSSH server on loopback for this test: its own host key, one client key that may log in. */
export interface SshServer {
  readonly port: number;
  /** A folder for the client's files (known_hosts, config). */
  readonly dir: string;
  /** The private key that the server accepts, for the current user. */
  readonly clientKey: string;
  readonly user: string;
  /** `ssh-ed25519 AAAA…` of the host key, as known_hosts lists it after the host name. */
  readonly hostKey: string;
  close(): Promise<void>;
}

/**
 * Starts `sshd -D -e` on 127.0.0.1 with a configuration of its own (no PAM, no password, only the
 * generated client key), and waits (bounded) until it listens.
 */
export async function startSshServer(port: number): Promise<SshServer> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-sshd-"));
  const user = userInfo().username;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_ed25519")]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id_ed25519")]);
  await writeFile(join(dir, "authorized_keys"), await readFile(join(dir, "id_ed25519.pub")));
  await writeFile(
    join(dir, "sshd_config"),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, "host_ed25519")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `AllowUsers ${user}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      // The key files live in a temporary folder whose owner and modes sshd would otherwise judge.
      "StrictModes no",
      "",
    ].join("\n"),
  );
  // sshd refuses to start without its privilege separation folder (created by the service at boot).
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 }).catch(() => undefined);
  const child: ChildProcess = spawn(sshdPath(), ["-D", "-e", "-f", join(dir, "sshd_config")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sshd did not listen in time: ${log}`));
    }, 10_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString("utf8");
      if (log.includes("Server listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited with ${code}: ${log}`));
    });
  });
  const hostKey = (await readFile(join(dir, "host_ed25519.pub"), "utf8")).split(" ").slice(0, 2).join(" ");
  return {
    port,
    dir,
    clientKey: join(dir, "id_ed25519"),
    user,
    hostKey,
    async close() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
