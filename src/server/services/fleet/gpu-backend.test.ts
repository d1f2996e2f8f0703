import { describe, expect, it } from "vitest";
import { gpuBackendFromLogLine, mergeGpuBackend } from "./gpu-backend";

describe("GPU backend from llama-server log lines", () => {
  it("recognises Metal, CUDA and Vulkan device lines", () => {
    expect(gpuBackendFromLogLine("ggml_metal_device_init: GPU name: Apple M4 Pro")).toBe("Metal");
    expect(gpuBackendFromLogLine("ggml_metal_init: picking default device: Apple M2")).toBe("Metal");
    expect(gpuBackendFromLogLine("load_tensors: offloaded 33/33 layers to GPU, using Metal")).toBe("Metal");
    expect(gpuBackendFromLogLine("ggml_cuda_init: found 1 CUDA devices:")).toBe("CUDA");
    expect(gpuBackendFromLogLine("ggml_vulkan: Found 1 Vulkan devices:")).toBe("Vulkan");
  });

  it("does not take CPU lines or feature lists of absent backends for a GPU", () => {
    expect(gpuBackendFromLogLine("load_backend: loaded CPU backend from /usr/lib/libggml-cpu.so")).toBeNull();
    expect(gpuBackendFromLogLine("system_info: n_threads = 1 | CPU : SSE3 = 1 | METAL = 0 | CUDA = 0 |")).toBeNull();
    expect(gpuBackendFromLogLine("main: server is listening on http://127.0.0.1:8080")).toBeNull();
  });

  it("a GPU seen later replaces the CPU guess, never the other way round", () => {
    expect(mergeGpuBackend(null, null)).toBeNull();
    expect(mergeGpuBackend("CPU", "Metal")).toBe("Metal");
    expect(mergeGpuBackend("Metal", "CPU")).toBe("Metal");
    expect(mergeGpuBackend(null, "CUDA")).toBe("CUDA");
  });
});
