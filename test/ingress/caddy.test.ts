import { describe, expect, it } from "vitest";
import {
  expectClientCannotRenameRequest,
  expectClientClaimsReplaced,
  findBinary,
  startExampleCaddy,
  useIngress,
} from "./ingress-harness.js";

// Debian's caddy running examples/ingress/caddy/Caddyfile (forward_auth with copy_headers) in front of a
// real upstream, asking a real tollgate running examples/ingress/tollgate.yaml. CI installs caddy
// (.ci/run); on a machine without it the suite is skipped and says so.
const caddy = findBinary("caddy");
if (caddy === undefined)
  console.warn("test/ingress/caddy.test.ts skipped: no caddy binary (apt-get install caddy)");

describe.skipIf(caddy === undefined)(
  "Caddy forward_auth in front of tollgate (examples/ingress/caddy)",
  () => {
    const setup = useIngress((ports) => startExampleCaddy(caddy!, ports));
    const get = setup.send;

    it("lets an allowed request through with the claim headers and without the token; every request is asked", async () => {
      const token = await setup.tollgate.mint({ run_id: "555" });
      const seen = setup.upstream.seen.length;
      for (const path of ["/artifacts/a.zip?x=1", "/artifacts/b.zip"]) {
        const answer = await get(path, { "gateway-authorization": `Bearer ${token}` });
        expect(answer.status).toBe(200);
        expect(answer.text).toBe("hello from upstream");
      }
      expect(setup.upstream.seen.length).toBe(seen + 2);
      const request = setup.upstream.seen.at(-2)!;
      expect(request.url).toBe("/artifacts/a.zip?x=1");
      expect(request.headers["tollgate-claim-repository"]).toBe("octo-org/octo-repo");
      expect(request.headers["tollgate-claim-run_id"]).toBe("555");
      expect(request.headers["gateway-authorization"]).toBeUndefined();
      // Caddy does not cache: tollgate is asked for each request.
      expect(await setup.askedFor(token)).toBe(2);
      const asked = (await setup.tollgate.auditEvents()).filter((line) => line.forward_auth === true);
      expect(asked.slice(-2).map((line) => [line.decision, line.path])).toEqual([
        ["allow", "/artifacts/a.zip?x=1"],
        ["allow", "/artifacts/b.zip"],
      ]);
    });

    it("answers a denied request 403 and never reaches the upstream", async () => {
      const stranger = await setup.tollgate.mint({ repository_owner_id: "66", repository: "evil/repo" });
      const seen = setup.upstream.seen.length;
      const answer = await get("/artifacts/a.zip", { "gateway-authorization": `Bearer ${stranger}` });
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.text).error.code).toBe("TG_POLICY_DENIED");
      expect(setup.upstream.seen.length).toBe(seen);
    });

    it("answers a request without a token 401 with WWW-Authenticate, and a method the route refuses 405", async () => {
      const seen = setup.upstream.seen.length;
      const missing = await get("/artifacts/a.zip", {});
      expect(missing.status).toBe(401);
      expect(missing.headers.get("www-authenticate")).toContain("Bearer");
      const token = await setup.tollgate.mint();
      const deleted = await get("/artifacts/a.zip", { "gateway-authorization": `Bearer ${token}` }, "DELETE");
      expect(deleted.status).toBe(405);
      expect(setup.upstream.seen.length).toBe(seen);
    });

    it("refuses a request whose method or target the client tries to rename with another ingress's headers", () =>
      expectClientCannotRenameRequest(setup));

    it("replaces a client-sent claim header with tollgate's, and drops one for a claim the token lacks", () =>
      expectClientClaimsReplaced(setup));
  },
);
