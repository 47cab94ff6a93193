import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A throw-away CA and a server certificate it signed for `localhost` and `127.0.0.1` (PEM). */
export interface TestCertificates {
  readonly dir: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  close(): Promise<void>;
}

/** Generates certificates with the system's `openssl` (P-256 keys, valid one day). */
export async function createTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-tls-"));
  const path = (name: string) => join(dir, name);
  // Arguments as one string each (no value contains a space), so a command reads like its shell form.
  const openssl = (args: string) => run("openssl", args.split(" "), { cwd: dir, timeout: 15_000 });
  const ecKey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  await openssl(
    `req -x509 ${ecKey} -keyout ${path("ca.key")} -out ${path("ca.pem")} -days 1 -subj /CN=tollgate-test-ca ` +
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
  );
  await openssl(`req ${ecKey} -keyout ${path("server.key")} -out ${path("server.csr")} -subj /CN=localhost`);
  await writeFile(
    path("server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    `x509 -req -in ${path("server.csr")} -CA ${path("ca.pem")} -CAkey ${path("ca.key")} -CAcreateserial ` +
      `-out ${path("server.pem")} -days 1 -extfile ${path("server.ext")}`,
  );
  return {
    dir,
    caFile: path("ca.pem"),
    caPem: await readFile(path("ca.pem"), "utf8"),
    certPem: await readFile(path("server.pem"), "utf8"),
    keyPem: await readFile(path("server.key"), "utf8"),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
