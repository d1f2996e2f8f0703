/**
 * Which GPU backend the server reported in its log. On a Mac, anything but
 * Metal means slow inference (the seed's troubleshooting: look for
 * `ggml_metal_device_init` in the startup log), so it is loud.
 */

export function gpuFromLog(lines: readonly string[]): string | null {
  for (const line of lines) {
    if (/ggml_metal_(device_)?init|using device Metal|Metal backend/i.test(line)) return "Metal";
  }
  for (const line of lines) {
    if (/ggml_cuda_init|CUDA\d?\s*:|using device CUDA/i.test(line)) return "CUDA";
    if (/ggml_vulkan|using device Vulkan/i.test(line)) return "Vulkan";
  }
  return null;
}

export function GpuBadge({ backend, running }: { backend: string | null | undefined; running: boolean }) {
  const b = backend?.trim() || null;
  const metal = b !== null && /metal/i.test(b);
  const cpuOnly = b !== null && /^cpu/i.test(b);
  const tone = b === null ? "idle" : metal || !cpuOnly ? "ok" : "warn";
  const text = b === null ? "GPU: unknown" : cpuOnly ? "CPU only" : b;
  const title =
    b === null
      ? running
        ? "The server has not reported a GPU backend in its log yet"
        : "Reported by the server's log once it has started"
      : cpuOnly
        ? "Not using Metal: inference runs on the CPU. On a Mac, check that llama-server was built with Metal (brew install llama.cpp) and that GPU layers is above 0."
        : `The server reported the ${b} backend in its log`;
  return (
    <span className="badge" data-tone={tone} data-testid="gpu-badge" data-backend={b ?? ""} title={title} style={{ width: "auto", minWidth: "7.6rem" }}>
      <span className="dot" aria-hidden="true" />
      {text}
      {cpuOnly ? <span className="visually-hidden"> (not using Metal)</span> : null}
    </span>
  );
}
