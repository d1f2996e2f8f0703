/**
 * The paths the gateway serves on the app's port, and where each takes the
 * model name from. Everything else goes on to Next.
 *
 * OpenAI's: /v1/chat/completions, /v1/completions, /v1/embeddings,
 * /v1/responses (POST, the JSON body's `model`; llama-server serves the
 * Responses API as well), /v1/models and /v1/models/{model} (GET, answered
 * by the gateway: OpenAI's list and retrieve). Any other path under /v1/ is
 * the gateway's too (`unknown`): a JSON 404 in OpenAI's error shape naming
 * the paths served, never Next's HTML page (which an OpenAI client shows as
 * "404 <!DOCTYPE html>…").
 * llama-server's own: /completion, /tokenize, /detokenize, /infill, /rerank,
 * /v1/rerank (POST, body `model`), /props and /slots (GET, `?model=`).
 */
export type GatewayRoute =
  | { kind: "models" }
  /** /v1/models/{model}: `name` percent-decoded (as OpenAI's clients encode it). */
  | { kind: "model"; name: string }
  | { kind: "proxy"; method: "POST"; modelFrom: "body" }
  | { kind: "proxy"; method: "GET"; modelFrom: "query" }
  /** A path under /v1/ the gateway does not serve: 404 (gateway.ts unknownPath). */
  | { kind: "unknown" };

const POST_BODY = { kind: "proxy", method: "POST", modelFrom: "body" } as const;
const GET_QUERY = { kind: "proxy", method: "GET", modelFrom: "query" } as const;

export const GATEWAY_ROUTES: ReadonlyMap<string, GatewayRoute> = new Map<string, GatewayRoute>([
  ["/v1/chat/completions", POST_BODY],
  ["/v1/completions", POST_BODY],
  ["/v1/embeddings", POST_BODY],
  ["/v1/responses", POST_BODY],
  ["/v1/models", { kind: "models" }],
  ["/completion", POST_BODY],
  ["/tokenize", POST_BODY],
  ["/detokenize", POST_BODY],
  ["/infill", POST_BODY],
  ["/rerank", POST_BODY],
  ["/v1/rerank", POST_BODY],
  ["/props", GET_QUERY],
  ["/slots", GET_QUERY],
]);

/** The path part of a request target ("/v1/models?x=1" → "/v1/models"). */
export function pathOf(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

const MODEL_PREFIX = "/v1/models/";
const UNKNOWN = { kind: "unknown" } as const;

/** The paths the gateway serves, for the 404 of one it does not ("/v1/chat/completions, …, /slots"). */
export function servedPaths(): string {
  return [...GATEWAY_ROUTES.keys()].map((p) => (p === "/v1/models" ? "/v1/models[/{model}]" : p)).join(", ");
}

/** The route for a request target, or undefined when the gateway does not serve it. A trailing slash is tolerated. */
export function matchRoute(url: string): GatewayRoute | undefined {
  const p = pathOf(url);
  const fixed = GATEWAY_ROUTES.get(p) ?? (p.length > 1 && p.endsWith("/") ? GATEWAY_ROUTES.get(p.slice(0, -1)) : undefined);
  if (fixed !== undefined) return fixed;
  if (!p.startsWith(MODEL_PREFIX)) return p.startsWith("/v1/") ? UNKNOWN : undefined;
  const raw = p.slice(MODEL_PREFIX.length, p.endsWith("/") ? -1 : undefined);
  if (raw === "") return UNKNOWN;
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // A malformed escape: looked up as written (and not found).
  }
  return { kind: "model", name };
}
