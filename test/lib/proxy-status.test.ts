import { describe, expect, it } from "vitest";
import { gatewayAnswer, gatewayErrorStatus, receivedStatus } from "../../src/lib/proxy-status.js";

// Proxy-Status (RFC 9209) as the gateway writes it and the workflow client reads it: an answer is the
// gateway's own only when the last member is tollgate's and carries `error`.
describe("Proxy-Status", () => {
  it("writes the gateway's own error with the RFC 9209 type and the code in details", () => {
    expect(gatewayErrorStatus("TG_POLICY_DENIED", 403)).toBe(
      'tollgate;error=http_request_denied;details="TG_POLICY_DENIED"',
    );
    expect(gatewayErrorStatus("TG_ROUTE_NOT_FOUND", 404)).toBe(
      'tollgate;error=http_request_error;details="TG_ROUTE_NOT_FOUND"',
    );
    expect(gatewayErrorStatus("TG_UPSTREAM_UNAVAILABLE", 502)).toContain("error=destination_unavailable");
    expect(receivedStatus(404)).toBe("tollgate;received-status=404");
  });

  it("reads its own answer back, from one field line or several", () => {
    expect(gatewayAnswer(gatewayErrorStatus("TG_TOKEN_EXPIRED", 401))).toEqual({ code: "TG_TOKEN_EXPIRED" });
    expect(gatewayAnswer(["cdn;received-status=403", gatewayErrorStatus("TG_POLICY_DENIED", 403)])).toEqual({
      code: "TG_POLICY_DENIED",
    });
    expect(gatewayAnswer('tollgate;error=http_request_denied;details="not a code"')).toEqual({
      code: undefined,
    });
  });

  it.each([
    ["no field", undefined],
    ["the destination's own", "origin-proxy;error=http_request_denied"],
    [
      "another tollgate's refusal, passed on",
      `${gatewayErrorStatus("TG_POLICY_DENIED", 403)}, ${receivedStatus(403)}`,
    ],
    ["passed on by the gateway", receivedStatus(404)],
    ["a field that does not parse", 'tollgate;error="unterminated'],
    ["tollgate named, no error", "tollgate"],
  ])("is not the gateway's own answer: %s", (_name, field) => {
    expect(gatewayAnswer(field)).toBe(false);
  });
});
