import { describe, expect, it } from "vitest";
import { getBooleanInput, readInputs } from "../../action/src/inputs.js";
import { noProxyList } from "../../action/src/proxy-env.js";

const base = { INPUT_GATEWAY: "https://tollgate.example.com", INPUT_AUDIENCE: "tollgate.example.com" };

describe("the action's inputs", () => {
  it("reads INPUT_* the way the runner passes them (hyphens kept), with defaults", () => {
    expect(
      readInputs({
        ...base,
        INPUT_FORWARDS:
          "# the database\n5432:db.internal:5432  # primary\n\n127.0.0.1:6379:cache.internal:6379\n",
        "INPUT_EXPORT-PROXY-ENV": "true",
        "INPUT_NO-PROXY": "internal.example, .corp",
      }),
    ).toEqual({
      gateway: "https://tollgate.example.com",
      audience: "tollgate.example.com",
      proxy: true,
      listen: "127.0.0.1:0",
      forwards: ["5432:db.internal:5432", "127.0.0.1:6379:cache.internal:6379"],
      exportProxyEnv: true,
      noProxy: ["internal.example", ".corp"],
      ca: undefined,
      caFile: undefined,
      verbose: false,
    });
  });

  it("takes the ca input as PEM text or as a path", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    expect(readInputs({ ...base, INPUT_CA: pem })).toMatchObject({ ca: pem, caFile: undefined });
    expect(readInputs({ ...base, INPUT_CA: "certs/ca.pem" })).toMatchObject({
      ca: undefined,
      caFile: "certs/ca.pem",
    });
  });

  it("takes proxy: false with no forwards: nothing runs in the background, the step checks the token and gives ssh-proxy-command", () => {
    expect(readInputs({ ...base, INPUT_PROXY: "false" })).toMatchObject({ proxy: false, forwards: [] });
  });

  it.each([
    [{ INPUT_AUDIENCE: "a" }, "input gateway is required"],
    [{ INPUT_GATEWAY: "https://g.example" }, "input audience is required"],
    [{ ...base, INPUT_PROXY: "yes" }, "is not true or false"],
    [
      { ...base, INPUT_PROXY: "false", INPUT_FORWARDS: "1:h:2", "INPUT_EXPORT-PROXY-ENV": "true" },
      "needs proxy: true",
    ],
    [{ ...base, INPUT_FORWARDS: "db.internal:5432" }, "expected LOCAL_PORT:HOST:PORT"],
    [{ ...base, INPUT_GATEWAY: "https://user:pw@g.example" }, "must not carry credentials"],
    [{ ...base, INPUT_LISTEN: "everywhere" }, "expected HOST:PORT"],
  ])("refuses %o", (env, message) => {
    expect(() => readInputs(env)).toThrow(message);
  });

  it("accepts the YAML 1.2 spellings of booleans only", () => {
    expect(getBooleanInput({ INPUT_X: "True" }, "x", false)).toBe(true);
    expect(getBooleanInput({ INPUT_X: "FALSE" }, "x", true)).toBe(false);
    expect(getBooleanInput({}, "x", true)).toBe(true);
    expect(() => getBooleanInput({ INPUT_X: "1" }, "x", true)).toThrow();
  });
});

describe("NO_PROXY for later steps", () => {
  it("keeps loopback, the gateway, GitHub's services and what was already there, once each", () => {
    const list = noProxyList(
      {
        NO_PROXY: "corp.example,localhost",
        GITHUB_SERVER_URL: "https://ghes.corp.example",
        ACTIONS_RESULTS_URL: "https://results-receiver.actions.githubusercontent.com/",
        ACTIONS_ID_TOKEN_REQUEST_URL:
          "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0",
      },
      "tollgate.example.com",
      ["extra.example"],
    ).split(",");
    expect(list).toEqual(
      expect.arrayContaining([
        "corp.example",
        "localhost",
        "127.0.0.1",
        "::1",
        "tollgate.example.com",
        "ghes.corp.example",
        "results-receiver.actions.githubusercontent.com",
        "pipelines.actions.githubusercontent.com",
        ".blob.core.windows.net",
        "extra.example",
      ]),
    );
    expect(new Set(list).size).toBe(list.length);
    expect(list).not.toContain("db.internal");
  });
});
