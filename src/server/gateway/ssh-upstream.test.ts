import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { channelAsSocket } from "./ssh-upstream";

/** A stand-in for an ssh2 channel: a Duplex whose destroy() closes it a moment later, as a CHANNEL_CLOSE round trip does. */
function standInChannel(): Duplex & { closedByUs: boolean } {
  const d = new Duplex({ read() {}, write(_c, _e, cb) { cb(); }, allowHalfOpen: true, emitClose: false }) as Duplex & { closedByUs: boolean };
  d.closedByUs = false;
  d.destroy = function (this: typeof d) {
    this.closedByUs = true;
    setTimeout(() => this.emit("close"), 5);
    return this;
  } as typeof d.destroy;
  return d;
}

describe("an ssh channel as an http socket", () => {
  it("the server's end closes the channel and marks it destroyed (a kept-alive channel is never reused half-open)", async () => {
    const ch = standInChannel();
    const s = channelAsSocket(ch);
    s.resume();
    s.push(null);
    await new Promise((r) => s.once("close", r));
    expect(ch.closedByUs).toBe(true);
    expect(s.destroyed).toBe(true);
  });

  it("setTimeout emits timeout after that long without bytes either way, and re-arms on traffic", async () => {
    const s = channelAsSocket(standInChannel());
    s.resume();
    let fired = 0;
    s.setTimeout(60, () => fired++);
    await new Promise((r) => setTimeout(r, 40));
    s.push(Buffer.from("x"));
    await new Promise((r) => setTimeout(r, 40));
    expect(fired).toBe(0);
    await new Promise((r) => setTimeout(r, 40));
    expect(fired).toBe(1);
    s.setTimeout(0);
    expect(s.timeout).toBe(0);
  });
});
