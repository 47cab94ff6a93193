/** What the main step hands the background process (as one JSON argument; no secret in it). */
export interface DaemonConfig {
  readonly gatewayUrl: string;
  readonly audience: string;
  readonly ca: string | undefined;
  readonly caFile: string | undefined;
  /** Listen address of the proxy, or `undefined` for forwards only. */
  readonly proxyListen: string | undefined;
  readonly forwards: readonly string[];
  readonly verbose: boolean;
}

/** The one message the background process sends over IPC once it listens (or failed to). */
export type DaemonMessage =
  | {
      readonly ready: true;
      readonly proxyUrl: string | undefined;
      readonly forwards: readonly { readonly local: string; readonly destination: string }[];
    }
  | { readonly ready: false; readonly error: string };

/** Whether an IPC message is a {@link DaemonMessage}. */
export function isDaemonMessage(message: unknown): message is DaemonMessage {
  return (
    typeof message === "object" &&
    message !== null &&
    typeof (message as { ready?: unknown }).ready === "boolean"
  );
}
