import { describe, expect, it } from "vitest";
import {
  expectClientCannotRenameRequest,
  expectClientClaimsReplaced,
  findBinary,
  startExampleNginx,
  useIngress,
} from "./ingress-harness.js";

// Debian's nginx running examples/ingress/nginx/tollgate-auth.conf (auth_request + proxy_cache) in front
// of a real upstream, asking a real tollgate running examples/ingress/tollgate.yaml. CI installs nginx
// (.ci/run); on a machine without it the suite is skipped and says so.
const nginx = findBinary("nginx");
if (nginx === undefined)
  console.warn("test/ingress/nginx.test.ts skipped: no nginx binary (apt-get install nginx)");

describe.skipIf(nginx === undefined)(
  "nginx auth_request in front of tollgate (examples/ingress/nginx)",
  () => {
    const setup = useIngress((ports) => startExampleNginx(nginx!, ports));
    const get = setup.send;
    const askedFor = setup.askedFor;

    it("lets an allowed request through to the upstream with the claim headers, and without the token", async () => {
      const token = await setup.tollgate.mint({ run_id: "777" });
      const seen = setup.upstream.seen.length;
      const answer = await get("/artifacts/build.zip?v=2", { "gateway-authorization": `Bearer ${token}` });
      expect(answer.status).toBe(200);
      expect(answer.text).toBe("hello from upstream");
      expect(setup.upstream.seen.length).toBe(seen + 1);
      const request = setup.upstream.seen.at(-1)!;
      expect(request.url).toBe("/artifacts/build.zip?v=2");
      expect(request.headers["tollgate-claim-repository"]).toBe("octo-org/octo-repo");
      expect(request.headers["tollgate-claim-run_id"]).toBe("777");
      expect(request.headers["gateway-authorization"]).toBeUndefined();
      const event = (await setup.tollgate.auditEvents()).findLast((line) => line.forward_auth === true);
      expect(event).toMatchObject({
        decision: "allow",
        route: "artifacts",
        method: "GET",
        path: "/artifacts/build.zip?v=2",
      });
    });

    it("answers a denied request 403 and never reaches the upstream", async () => {
      const stranger = await setup.tollgate.mint({ repository_owner_id: "66", repository: "evil/repo" });
      const seen = setup.upstream.seen.length;
      const answer = await get("/artifacts/build.zip", { "gateway-authorization": `Bearer ${stranger}` });
      expect(answer.status).toBe(403);
      expect(setup.upstream.seen.length).toBe(seen);
      const event = (await setup.tollgate.auditEvents()).findLast((line) => line.forward_auth === true);
      expect(event).toMatchObject({ decision: "deny", reason: "TG_POLICY_DENIED", route: "artifacts" });
    });

    it("answers a request without a token 401 with tollgate's WWW-Authenticate, and never reaches the upstream", async () => {
      const seen = setup.upstream.seen.length;
      const answer = await get("/artifacts/build.zip", {});
      expect(answer.status).toBe(401);
      expect(answer.headers.get("www-authenticate")).toContain("Bearer");
      expect(setup.upstream.seen.length).toBe(seen);
    });

    it("refuses a request whose method or target the client tries to rename with another ingress's headers", () =>
      expectClientCannotRenameRequest(setup));

    it("replaces a client-sent claim header with tollgate's, and drops one for a claim the token lacks", () =>
      expectClientClaimsReplaced(setup));

    it("caches the allowed answer: the same token is asked about once, another token is asked again", async () => {
      const first = await setup.tollgate.mint({ run_id: "1001" });
      const second = await setup.tollgate.mint({ run_id: "1002" });
      for (let i = 0; i < 4; i++) {
        expect((await get(`/artifacts/f${i}`, { "gateway-authorization": `Bearer ${first}` })).status).toBe(
          200,
        );
      }
      expect(await askedFor(first)).toBe(1);
      // Deny twin of the cache: a different credential is never answered from another's entry.
      expect((await get("/artifacts/f0", { "gateway-authorization": `Bearer ${second}` })).status).toBe(200);
      expect(await askedFor(second)).toBe(1);
      expect(
        setup.upstream.seen.filter((request) => request.headers["tollgate-claim-run_id"] === "1002"),
      ).toHaveLength(1);
      // The method is part of the key: a PUT is decided on its own.
      expect((await get("/artifacts/f0", { "gateway-authorization": `Bearer ${first}` }, "PUT")).status).toBe(
        200,
      );
      expect(await askedFor(first)).toBe(2);
    });

    it("keeps a denial only briefly, and a cached denial is still a denial that never reaches the upstream", async () => {
      const stranger = await setup.tollgate.mint({ repository_owner_id: "66", repository: "evil/other" });
      const seen = setup.upstream.seen.length;
      for (let i = 0; i < 3; i++) {
        expect((await get("/artifacts/x", { "gateway-authorization": `Bearer ${stranger}` })).status).toBe(
          403,
        );
      }
      expect(await askedFor(stranger)).toBe(1);
      expect(setup.upstream.seen.length).toBe(seen);
    });
  },
);
