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

    it("answers a request without a token 401 with tollgate's WWW-Authenticate, and never reaches the upstream", () =>
      expectMissingTokenChallenged(setup));

    it("refuses a request whose method or target the client tries to rename with another ingress's headers", () =>
      expectClientCannotRenameRequest(setup));

    it("replaces a client-sent claim header with tollgate's, and drops one for a claim the token lacks", () =>
      expectClientClaimsReplaced(setup));

    it("caches the allowed answer: the same token is asked about once, another token and another method again", () =>
      expectAnswersKeptPerCredential(setup, ["1001", "1002"]));

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
