/** How to get llama-server when a host has none (shown wherever the app learns it is missing). */
export function LlamaServerMissing({ hostName, detail }: { hostName?: string | null; detail?: string | null }) {
  return (
    <div className="notice" data-tone="warn" role="note" data-testid="llama-server-missing">
      <div>
        <p>
          <strong>llama-server was not found{hostName ? ` on ${hostName}` : ""}.</strong> Models cannot start until it is installed.
        </p>
        <p>
          On a Mac (Metal): <code>brew install llama.cpp</code>, then check it with <code>llama-server --version</code>. Elsewhere, build llama.cpp and point the app at the binary with{" "}
          <code>LLAMA_SERVER_BIN=/path/to/llama-server</code> (or set the binary on the host&apos;s page).
        </p>
        {detail ? <p className="muted mono">{detail}</p> : null}
      </div>
    </div>
  );
}

/** True when an error message says the binary is missing. */
export function saysLlamaServerMissing(message: string | null | undefined): boolean {
  return !!message && /llama-server (was )?not found|LLAMA_SERVER_BIN=.* is not an executable/i.test(message);
}
