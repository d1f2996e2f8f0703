/**
 * Reading a request's body (bounded) and the model it names.
 */
import type { IncomingMessage } from "node:http";
import { GatewayError } from "./openai-error";

/** Default bound of a request body: a long prompt or a batch of embedding inputs, not a file upload. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** The whole body as sent; 413 past `maxBytes` (the rest is not read). */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        cleanup();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new GatewayError(400, "invalid_request_error", "body_unreadable", `the request body could not be read: ${err.message}`));
    };
    const onAborted = () => onError(new Error("the client went away"));
    function cleanup() {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
    }
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
  });
}

/** 413 for a body past `maxBytes`. */
export function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError(413, "invalid_request_error", "body_too_large", `the request body is larger than ${Math.round(maxBytes / 1024 / 1024)} MiB`);
}

/** The `model` of a JSON body; 400 when the body is not a JSON object or names no model. */
export function modelOfBody(body: Buffer): string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new GatewayError(400, "invalid_request_error", "invalid_json", `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new GatewayError(400, "invalid_request_error", "invalid_body", "the request body must be a JSON object");
  const model = (value as { model?: unknown }).model;
  if (typeof model !== "string" || model === "") throw new GatewayError(400, "invalid_request_error", "model_required", 'the request must name a model: "model": "<registry name or alias>" (GET /v1/models lists them)', { param: "model" });
  return model;
}

/** The `model` query parameter (GET /props?model=, /slots?model=). */
export function modelOfQuery(url: string): string {
  const q = url.indexOf("?");
  const model = q === -1 ? null : new URLSearchParams(url.slice(q + 1)).get("model");
  if (!model) throw new GatewayError(400, "invalid_request_error", "model_required", "name the model: ?model=<registry name or alias> (GET /v1/models lists them)", { param: "model" });
  return model;
}
