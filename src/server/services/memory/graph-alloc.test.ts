import { describe, expect, it } from "vitest";
import { computeBufferBytes, type GraphTensor } from "./graph-alloc";

describe("computeBufferBytes (ggml's graph allocator, replayed)", () => {
  it("frees a tensor after its last reader, so a chain needs two tensors at a time", () => {
    const g: GraphTensor[] = [
      { bytes: 1024, srcs: [] },
      { bytes: 1024, srcs: [0] },
      { bytes: 1024, srcs: [1] },
      { bytes: 1024, srcs: [2] },
    ];
    expect(computeBufferBytes(g)).toBe(2048);
  });

  it("writes an in-place op over its source when it is the source's last reader", () => {
    const g: GraphTensor[] = [
      { bytes: 1024, srcs: [] },
      { bytes: 1024, srcs: [0], inplace: true },
      { bytes: 1024, srcs: [1], inplace: true },
    ];
    expect(computeBufferBytes(g)).toBe(1024);
  });

  it("does not write over a source that another node still reads, nor over an output", () => {
    const shared: GraphTensor[] = [
      { bytes: 1024, srcs: [] },
      { bytes: 1024, srcs: [0], inplace: true },
      { bytes: 1024, srcs: [0, 1] },
    ];
    expect(computeBufferBytes(shared)).toBe(3072);
    const output: GraphTensor[] = [
      { bytes: 1024, srcs: [], output: true },
      { bytes: 1024, srcs: [0], inplace: true },
    ];
    expect(computeBufferBytes(output)).toBe(2048);
  });

  it("places inputs first and keeps them until their last reader", () => {
    const g: GraphTensor[] = [
      { bytes: 100, srcs: [] }, // a node
      { bytes: 4096, srcs: [], input: true },
      { bytes: 100, srcs: [0, 1] },
    ];
    // input at [0, 4096), node 0 at 4096, node 2 after it: 4096 + 2 * 128 (alignment 32 rounds 100 to 128)
    expect(computeBufferBytes(g)).toBe(4096 + 128 + 128);
  });

  it("leaves a hole a bigger tensor cannot use: fragmentation grows the buffer", () => {
    const g: GraphTensor[] = [
      { bytes: 1000 * 32, srcs: [] }, // a: [0, 32000)
      { bytes: 10 * 32, srcs: [] }, // b: [32000, 32320), read at the end
      { bytes: 32, srcs: [0] }, // a freed after this: a hole of 32000 below b
      { bytes: 2000 * 32, srcs: [1, 2] }, // does not fit the hole: placed after b
    ];
    expect(computeBufferBytes(g)).toBe(32000 + 320 + 32 + 64000);
  });

  it("refuses a source that is not an earlier tensor", () => {
    expect(() => computeBufferBytes([{ bytes: 1, srcs: [0] }])).toThrow(/not an earlier one/);
  });
});
