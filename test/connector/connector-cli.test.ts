import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { parsePrivateKey, publicKeyOf } from "../../src/connector/index.js";

/** `tollgate connector` and `connector keygen` as a user meets them: keys, flags, --config and mistakes. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tollgate-connector-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: {},
  });
  return { code, stdout, stderr };
}

describe("tollgate connector keygen", () => {
  it("writes a private key the owner alone may read, and prints its public key as the last word", async () => {
    const out = join(dir, "first.key");
    const { code, stdout } = await run(["connector", "keygen", "--out", out]);
    expect(code).toBe(0);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const printed = stdout.trim().split(/\s+/).at(-1);
    expect(printed).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/);
    expect(publicKeyOf(parsePrivateKey(await readFile(out, "utf8")))).toBe(printed);
  });

  it("twin: never overwrites an existing key (exit 2), and the key stays as it was", async () => {
    const out = join(dir, "kept.key");
    await run(["connector", "keygen", "--out", out]);
    const before = await readFile(out, "utf8");
    const again = await run(["connector", "keygen", "--out", out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("keygen never overwrites a key");
    expect(await readFile(out, "utf8")).toBe(before);
  });
});

describe("tollgate connector: mistakes are caught before anything is dialled", () => {
  it("names what is missing", async () => {
    expect((await run(["connector", "--pool", "dc1"])).stderr).toContain("give at least one --edge");
    expect((await run(["connector", "--edge", "https://edge.example.com"])).stderr).toContain("give --pool");
    const noAllow = await run([
      "connector",
      "--edge",
      "https://edge.example.com",
      "--pool",
      "dc1",
      "--key",
      "k",
    ]);
    expect(noAllow.code).toBe(2);
    expect(noAllow.stderr).toContain("give at least one --allow");
  });

  it("refuses an edge that is not http(s), an allow entry that is not a destination, and a file that is not a key", async () => {
    const base = [
      "connector",
      "--pool",
      "dc1",
      "--key",
      join(dir, "missing.key"),
      "--allow",
      "db.internal:5432",
    ];
    expect((await run([...base, "--edge", "ftp://edge"])).stderr).toContain("use https://");
    const badAllow = await run([
      "connector",
      "--edge",
      "https://e",
      "--pool",
      "p",
      "--key",
      "k",
      "--allow",
      "db.internal",
    ]);
    expect(badAllow.code).toBe(2);
    expect(badAllow.stderr).toContain("--allow db.internal");
    expect((await run([...base, "--edge", "https://edge"])).stderr).toContain("cannot read the key file");
    const notKey = join(dir, "not-a-key.pem");
    await writeFile(notKey, "hello");
    const wrong = await run([
      "connector",
      "--edge",
      "https://e",
      "--pool",
      "p",
      "--key",
      notKey,
      "--allow",
      "db:1",
    ]);
    expect(wrong.stderr).toContain("is not an Ed25519 private key");
  });

  it("--token-file instead of --key: never both, never over plain http to another machine, and a file that can be read", async () => {
    const token = join(dir, "token");
    await writeFile(token, "a.b.c");
    const base = ["connector", "--pool", "dc1", "--allow", "db.internal:5432"];
    const both = await run([...base, "--edge", "https://e", "--key", "k", "--token-file", token]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("not both");
    const plain = await run([...base, "--edge", "http://edge.example.com", "--token-file", token]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("a token is sent only over https://");
    const missing = await run([...base, "--edge", "https://e", "--token-file", join(dir, "no-token")]);
    expect(missing.stderr).toContain("cannot read the token file");
    // The token file from --config; the mistake left is the http edge, named as such.
    const config = join(dir, "token-connector.yaml");
    await writeFile(
      config,
      `edges: [http://10.0.0.1:8080]\npool: dc1\ntoken_file: ${token}\nallow: [db:1]\n`,
    );
    const fromFile = await run(["connector", "--config", config]);
    expect(fromFile.stderr).toContain("--edge http://10.0.0.1:8080: a token is sent only over https://");
  });

  it("--config: reads the same settings from YAML, and refuses unknown keys", async () => {
    const config = join(dir, "connector.yaml");
    await writeFile(config, "edges: [https://edge.example.com]\npool: dc1\nallow: [db.internal:5432]\n");
    // Everything but the key comes from the file: the mistake named is the missing key.
    const fromFile = await run(["connector", "--config", config]);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain("give --key FILE");
    const typo = join(dir, "typo.yaml");
    await writeFile(typo, "edge: [https://edge.example.com]\n");
    const refused = await run(["connector", "--config", typo]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("keys: edges, pool, key, token_file, allow, ca");
  });
});
