/**
 * What the model page says of the backend a server reported (gpuBackend, from
 * llama-server's log: "Metal", "CUDA", "Vulkan", "CPU"), for the host's
 * platform as its agent's hello names it (Node's `process.platform`:
 * "darwin", "linux"). On a Mac a CPU backend means llama-server runs without
 * Metal, which is slow and worth a warning; on Linux the CPU is simply what
 * it runs on, and Metal does not exist there to be missed.
 */

export interface BackendBadgeText {
  /** The badge's words. */
  text: string;
  /** Its tooltip: where the backend came from, and on a Mac without Metal what to check. */
  title: string;
  /** Words for screen readers after `text` (the warning a sighted user reads from the colour); null for none. */
  spoken: string | null;
  tone: "idle" | "ok" | "warn";
}

const isCpu = (backend: string) => /^cpu/i.test(backend);

/**
 * The badge for `backend` (null: not reported yet) of a server that is `running` or not, on a host whose
 * platform is `platform` (null: its agent has not said hello yet). A CPU backend reads "CPU only", a warning
 * that names Metal, on macOS; "CPU" on any other platform; "CPU only" without the warning while the platform
 * is unknown.
 */
export function backendBadgeText(backend: string | null | undefined, running: boolean, platform: string | null | undefined): BackendBadgeText {
  const b = backend?.trim() || null;
  if (b === null) {
    const title = running ? "The server has not reported a GPU backend in its log yet" : "Reported by the server's log once it has started";
    return { text: "GPU: unknown", title, spoken: null, tone: "idle" };
  }
  if (!isCpu(b)) return { text: b, title: `The server reported the ${b} backend in its log`, spoken: null, tone: "ok" };
  if (platform === "darwin") {
    return {
      text: "CPU only",
      title: "Not using Metal: inference runs on the CPU. Check that llama-server was built with Metal (brew install llama.cpp) and that GPU layers is above 0.",
      spoken: "(not using Metal)",
      tone: "warn",
    };
  }
  if (platform) return { text: "CPU", title: `The server reported the CPU backend in its log: inference runs on the CPU of this ${platform} host`, spoken: null, tone: "ok" };
  return { text: "CPU only", title: "The server reported the CPU backend in its log: inference runs on the CPU", spoken: null, tone: "ok" };
}

/**
 * Whether the model page warns "Not using Metal" (check the Metal build, GPU layers, the log): for a CPU
 * backend on macOS; while the platform is unknown, for a host reached over ssh (the Macs this app drives).
 */
export function warnsNotUsingMetal(backend: string | null | undefined, platform: string | null | undefined, linkKind: string | null | undefined): boolean {
  const b = backend?.trim() || null;
  if (b === null || !isCpu(b)) return false;
  return platform ? platform === "darwin" : linkKind === "ssh";
}
