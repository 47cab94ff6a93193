import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  expectAnswersKeptPerCredential,
  expectClientCannotRenameRequest,
  expectClientClaimsReplaced,
  expectMissingTokenChallenged,
  findBinary,
  startExampleNginx,
  useIngress,
} from "./ingress-harness.js";

// Debian's nginx with its Lua module running examples/ingress/nginx/tollgate-auth-lua.conf (decisions kept
// in a lua_shared_dict) in front of a real upstream, asking a real tollgate running
// examples/ingress/tollgate.yaml. CI installs nginx and libnginx-mod-http-lua (.ci/run); on a machine
// without them the suite is skipped and says so.
const nginx = findBinary("nginx");
const modules = "/usr/lib/nginx/modules";
const lua = `${modules}/ngx_http_lua_module.so`;
const available = nginx !== undefined && existsSync(lua);
if (!available)
  console.warn(
    "test/ingress/nginx-lua.test.ts skipped: no nginx or Lua module (apt-get install nginx libnginx-mod-http-lua)",
  );

describe.skipIf(!available)(
  "nginx with decisions in memory (examples/ingress/nginx/tollgate-auth-lua.conf)",
  () => {
    const setup = useIngress((ports) =>
      startExampleNginx(nginx!, ports, {
        example: "tollgate-auth-lua.conf",
        // As Debian's modules-enabled does: the development kit first, then the Lua module.
        mainContext: `load_module ${modules}/ndk_http_module.so;\nload_module ${lua};\n`,
      }),
    );
    const get = setup.send;
    const askedFor = setup.askedFor;

    it("lets an allowed request through with the claim headers and without the token; a denied one gets 403 and never reaches the upstream", async () => {
      const token = await setup.tollgate.mint({ run_id: "888" });
      const seen = setup.upstream.seen.length;
      const answer = await get("/artifacts/build.zip?v=3", { "gateway-authorization": `Bearer ${token}` });
      expect(answer.status).toBe(200);
      expect(answer.text).toBe("hello from upstream");
      const request = setup.upstream.seen.at(-1)!;
      expect(setup.upstream.seen.length).toBe(seen + 1);
      expect(request.url).toBe("/artifacts/build.zip?v=3");
      expect(request.headers["tollgate-claim-repository"]).toBe("octo-org/octo-repo");
      expect(request.headers["tollgate-claim-run_id"]).toBe("888");
      expect(request.headers["gateway-authorization"]).toBeUndefined();

      const stranger = await setup.tollgate.mint({ repository_owner_id: "66", repository: "evil/repo" });
      const before = setup.upstream.seen.length;
      for (let i = 0; i < 3; i++) {
        expect((await get("/artifacts/x", { "gateway-authorization": `Bearer ${stranger}` })).status).toBe(
          403,
        );
      }
      expect(setup.upstream.seen.length).toBe(before);
      // The denial is kept (briefly) too: asked once for three.
      expect(await askedFor(stranger)).toBe(1);
    });

    it("answers a request without a token 401 with tollgate's WWW-Authenticate, and never reaches the upstream", () =>
      expectMissingTokenChallenged(setup));

    it("refuses a request whose method or target the client tries to rename with another ingress's headers", () =>
      expectClientCannotRenameRequest(setup));

    it("replaces a client-sent claim header with tollgate's, and drops one for a claim the token lacks", () =>
      expectClientClaimsReplaced(setup));

    it("keeps the allowed decision: the same token is asked about once, another token and another method again", () =>
      expectAnswersKeptPerCredential(setup, ["2001", "2002"]));
  },
);
