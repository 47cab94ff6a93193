/**
 * A claim set shaped like a GitHub Actions token for a push to `main` of `octo-org/octo-repo` (the
 * documentation's example, string-typed ids and all), without the claims `mint` stamps itself (`iss`,
 * `iat`, `nbf`, `exp`, `jti`) and without `aud`, which the caller chooses. Overrides replace or add
 * claims; an override of `undefined` removes the claim from the minted token
 * (stamped ones too, e.g. `{ exp: undefined }`).
 *
 * @example
 * await issuer.mint(githubLikeClaims({ ref: "refs/heads/dev" }), { audience: "tollgate.example.com" });
 */
export function githubLikeClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    sub: "repo:octo-org/octo-repo:ref:refs/heads/main",
    ref: "refs/heads/main",
    sha: "d6b1c84e5a2cbfb09c2e0a4a1f3f9f3a1cc5b8de",
    repository: "octo-org/octo-repo",
    repository_owner: "octo-org",
    repository_owner_id: "65",
    repository_id: "74",
    repository_visibility: "private",
    run_id: "9204817261",
    run_number: "10",
    run_attempt: "1",
    runner_environment: "github-hosted",
    actor: "octocat",
    actor_id: "12",
    workflow: "CI",
    workflow_ref: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    workflow_sha: "d6b1c84e5a2cbfb09c2e0a4a1f3f9f3a1cc5b8de",
    job_workflow_ref: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    job_workflow_sha: "d6b1c84e5a2cbfb09c2e0a4a1f3f9f3a1cc5b8de",
    head_ref: "",
    base_ref: "",
    event_name: "push",
    ref_type: "branch",
    ref_protected: "true",
    check_run_id: "27310587301",
  };
  // An `undefined` override is kept as such: JSON drops it, so it also removes a claim `mint` would stamp.
  return { ...claims, ...overrides };
}
