/**
 * Which GPU backend the server reported in its log. On a Mac, anything but
 * Metal means slow inference (the seed's troubleshooting: look for
 * `ggml_metal_device_init` in the startup log), so it is loud there; on
 * other platforms the CPU is said plainly (backend-badge.ts).
 */
import { backendBadgeText } from "./backend-badge";

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

/** The backend badge; `platform`: the host's, from its agent's hello (null until known). Words: backend-badge.ts. */
export function GpuBadge({ backend, running, platform }: { backend: string | null | undefined; running: boolean; platform: string | null | undefined }) {
  const b = backend?.trim() || null;
  const { text, title, spoken, tone } = backendBadgeText(b, running, platform);
  return (
    <span className="badge" data-tone={tone} data-testid="gpu-badge" data-backend={b ?? ""} title={title} style={{ width: "auto", minWidth: "7.6rem" }}>
      <span className="dot" aria-hidden="true" />
      {text}
      {spoken ? <span className="visually-hidden"> {spoken}</span> : null}
    </span>
  );
}
