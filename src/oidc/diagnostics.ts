import { channel } from "node:diagnostics_channel";

/**
 * Named diagnostics channels of the verifier, so that metrics and logs can observe key loading without
 * this folder importing a metrics library (the undici pattern). Subscribe with
 * `diagnostics_channel.subscribe(oidcChannels.keys, handler)`.
 */
export const oidcChannels = Object.freeze({
  /** One message per discovery+JWKS load attempt: {@link KeySetLoadEvent}. */
  keys: "tollgate:oidc:keys",
});

/** Published on {@link oidcChannels.keys} after every key set load attempt. */
export interface KeySetLoadEvent {
  /** Configured issuer name. */
  readonly issuer: string;
  /** Why the keys were fetched. */
  readonly reason: "initial" | "refresh" | "unknown-kid" | "on-demand";
  readonly ok: boolean;
  /** Number of usable signing keys loaded (when ok). */
  readonly keyCount?: number;
  /** Operator detail of the failure (when not ok). */
  readonly error?: string;
  readonly durationMs: number;
}

const keysChannel = channel(oidcChannels.keys);

/** Publishes a key set load event when anyone listens (free otherwise). */
export function publishKeySetLoad(event: KeySetLoadEvent): void {
  if (keysChannel.hasSubscribers) keysChannel.publish(event);
}
