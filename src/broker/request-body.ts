import type { IncomingMessage } from "node:http";
import { TollgateError } from "../errors/index.js";
import type { BrokerAction, JitConfigRequest } from "./types.js";

/** Largest request body accepted, as in github-runner-token-proxy. */
export const maxBodyBytes = 64 * 1024;

/** The fields each endpoint accepts; anything else is refused, as Go's `DisallowUnknownFields` does. */
const allowedFields: Readonly<Record<BrokerAction, readonly string[]>> = {
  register: ["scope"],
  remove: ["scope"],
  jitconfig: ["scope", "name", "labels", "runner_group_id", "work_folder"],
};

/** A runner name: what `config.sh --name` accepts without quoting trouble. */
const runnerNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A label: no commas (config.sh joins labels with them), no whitespace or control characters. */
const labelPattern = /^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,99}$/;
/** A relative work folder below the runner's directory. */
const workFolderPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}(?:\/[A-Za-z0-9_][A-Za-z0-9._-]{0,63}){0,7}$/;
const maxLabels = 100;

/** A parsed broker request body: the scope as sent (validated later) and, for JIT, the runner settings. */
export interface BrokerRequestBody {
  readonly scope: unknown;
  readonly jit?: JitConfigRequest;
}

/** Longest a broker request body may take to arrive, whole (it is at most 64 KiB of JSON). */
export const bodyTimeoutMs = 10_000;

/**
 * Reads a request body of at most {@link maxBodyBytes} within `timeoutMs` (default {@link bodyTimeoutMs}).
 * A declared or actual larger body is refused with `TG_BODY_TOO_LARGE` without reading the rest; a body
 * still incomplete at the deadline with `TG_REQUEST_TIMEOUT` (the connection is then closed), so a client
 * that sends headers and then trickles or withholds the body cannot hold a broker request open.
 */
export function readRequestBody(req: IncomingMessage, timeoutMs = bodyTimeoutMs): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBodyBytes) return Promise.reject(tooLarge());
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error: TollgateError | undefined) => {
      clearTimeout(deadline);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      if (error === undefined) return resolve(Buffer.concat(chunks));
      // Nothing more is read: the answer says so and the server closes the connection after it.
      req.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) finish(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    // The client went away mid-body: nothing to answer, but the audit event should say what happened.
    const onError = (error: Error) =>
      finish(new TollgateError("TG_BAD_REQUEST", "the request body could not be read", { cause: error }));
    const onClose = () => {
      if (!req.complete) finish(new TollgateError("TG_BAD_REQUEST", "the request body could not be read"));
    };
    const deadline = setTimeout(
      () =>
        finish(
          new TollgateError(
            "TG_REQUEST_TIMEOUT",
            `the request body did not arrive within ${timeoutMs / 1000}s`,
            {
              headers: { connection: "close" },
            },
          ),
        ),
      timeoutMs,
    );
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/**
 * Parses a broker request body strictly: UTF-8 JSON, one object, only the endpoint's fields, each of
 * its type. Messages name fields and expectations, never the caller's values. The `Content-Type` is
 * not checked: github-runner-token-proxy's documented `curl --data '{"scope":…}'` sends
 * `application/x-www-form-urlencoded`.
 *
 * @example
 * parseBrokerBody("register", Buffer.from('{"scope":"octo-org/app"}')); // { scope: "octo-org/app" }
 */
export function parseBrokerBody(action: BrokerAction, body: Buffer): BrokerRequestBody {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body);
  } catch {
    throw badRequest("the request body must be UTF-8 JSON");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('the request body must be a JSON object such as {"scope": "octo-org/octo-repo"}');
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest('the request body must be a JSON object such as {"scope": "octo-org/octo-repo"}');
  }
  const fields = value as Record<string, unknown>;
  const allowed = allowedFields[action];
  if (Object.keys(fields).some((key) => !allowed.includes(key))) {
    throw badRequest(`the request body has an unknown field; allowed: ${allowed.join(", ")}`);
  }
  if (!("scope" in fields)) throw badRequest('the request body must have "scope"');
  if (typeof fields.scope !== "string") throw badRequest('"scope" must be a string');
  if (action !== "jitconfig") return { scope: fields.scope };
  return { scope: fields.scope, jit: parseJitSettings(fields) };
}

function parseJitSettings(fields: Record<string, unknown>): JitConfigRequest {
  const { name, labels, runner_group_id: group, work_folder: folder } = fields;
  if (typeof name !== "string" || !runnerNamePattern.test(name)) {
    throw badRequest('"name" must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  if (!Array.isArray(labels) || labels.length === 0 || labels.length > maxLabels) {
    throw badRequest(`"labels" must be a list of 1-${maxLabels} labels`);
  }
  if (!labels.every((label) => typeof label === "string" && labelPattern.test(label))) {
    throw badRequest(
      'each label must be 1-100 letters, digits, ".", "_", ":", "/", "+" or "-" (no commas or spaces)',
    );
  }
  if (new Set(labels).size !== labels.length) throw badRequest('"labels" must not repeat a label');
  // GitHub's default runner group is 1; the field may be left out for it.
  const runnerGroupId = group === undefined ? 1 : group;
  if (typeof runnerGroupId !== "number" || !Number.isSafeInteger(runnerGroupId) || runnerGroupId < 1) {
    throw badRequest('"runner_group_id" must be a positive whole number (1 is the default group)');
  }
  const workFolder = folder === undefined ? "_work" : folder;
  if (
    typeof workFolder !== "string" ||
    !workFolderPattern.test(workFolder) ||
    workFolder.split("/").some((part) => /^\.+$/.test(part))
  ) {
    throw badRequest('"work_folder" must be a relative path of letters, digits, ".", "_" and "-" (no "..")');
  }
  return { name, labels: labels as string[], runnerGroupId, workFolder };
}

function badRequest(message: string): TollgateError {
  return new TollgateError("TG_BAD_REQUEST", message);
}

function tooLarge(): TollgateError {
  // The rest of the body is not read, so the connection cannot carry another request.
  return new TollgateError("TG_BODY_TOO_LARGE", `the request body exceeds ${maxBodyBytes} bytes`, {
    headers: { connection: "close" },
  });
}
