/**
 * The largest request body the API reads, and a Request wrapper that holds
 * tRPC to it. Next's proxy buffers a body up to `proxyClientMaxBodySize`
 * (next.config.mjs: this limit plus one byte) and silently cuts the rest,
 * which reached tRPC as "Unterminated string in JSON at position 10485760".
 * With the wrapper, a body past the limit is PAYLOAD_TOO_LARGE (HTTP 413)
 * with a message that gives the limit.
 */
import { TRPCError } from "@trpc/server";

/** 10 MiB: a model_registry.json of the seed's 2000-model maximum is well under 1 MiB. */
export const MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024;

export function bodyTooLargeMessage(limit: number, size?: number): string {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
  const got = size === undefined ? "larger than" : `${size} bytes (${mib(size)}), more than`;
  return `request body is ${got} the limit of ${limit} bytes (${mib(limit)}); send less at once`;
}

/**
 * `req` with a body that errors with TRPCError PAYLOAD_TOO_LARGE once more
 * than `limit` bytes have been read (at once when Content-Length says so).
 * Requests without a body are returned as they are.
 */
export function limitRequestBody(req: Request, limit = MAX_REQUEST_BODY_BYTES): Request {
  if (!req.body) return req;
  const declared = Number(req.headers.get("content-length"));
  const tooLarge = (size?: number) => new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: bodyTooLargeMessage(limit, size) });
  if (Number.isFinite(declared) && declared > limit) {
    void req.body.cancel().catch(() => undefined);
    const failing = new ReadableStream<Uint8Array>({ start: (c) => c.error(tooLarge(declared)) });
    return new Request(req, { body: failing, duplex: "half" } as RequestInit);
  }
  let seen = 0;
  const counted = req.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limit) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Request(req, { body: counted, duplex: "half" } as RequestInit);
}
