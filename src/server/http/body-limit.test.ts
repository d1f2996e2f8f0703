import { initTRPC } from "@trpc/server";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import nextConfig from "../../../next.config.mjs";
import { limitRequestBody, MAX_REQUEST_BODY_BYTES } from "./body-limit";

const t = initTRPC.create();
const router = t.router({ echo: t.procedure.input(z.object({ text: z.string() })).mutation(({ input }) => input.text.length) });

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  new Request("http://localhost/api/trpc/echo", { method: "POST", body, headers: { "content-type": "application/json", ...headers }, duplex: "half" } as RequestInit);
const handle = (req: Request, limit: number) => fetchRequestHandler({ endpoint: "/api/trpc", req: limitRequestBody(req, limit), router });

/** A body sent in chunks with no Content-Length, as a proxy that cut it short would pass it on. */
function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, at + 100));
      at += 100;
    },
  });
}

describe("limitRequestBody", () => {
  it("passes a body within the limit", async () => {
    const res = await handle(post(JSON.stringify({ text: "x".repeat(900) })), 1000);
    expect(res.status).toBe(200);
    expect((await res.json()).result.data).toBe(900);
  });

  it("answers 413 PAYLOAD_TOO_LARGE naming the limit, from Content-Length or from the bytes read", async () => {
    const body = JSON.stringify({ text: "x".repeat(1500) });
    for (const req of [post(body), post(chunked(body))]) {
      const res = await handle(req, 1000);
      expect(res.status).toBe(413);
      const err = (await res.json()).error;
      expect(err.data.code).toBe("PAYLOAD_TOO_LARGE");
      expect(err.message).toMatch(/^request body is .*the limit of 1000 bytes \(0\.0 MiB\); send less at once$/);
    }
  });

  it("Next's proxy keeps one byte more than the limit, so a cut body is still seen as too large", () => {
    expect(nextConfig.experimental?.proxyClientMaxBodySize).toBe(MAX_REQUEST_BODY_BYTES + 1);
  });
});
