import { llamaInstallHint } from "synapse-host-agent/llama-install";

/** Text with `backtick` spans as <code>. */
function WithCode({ text }: { text: string }) {
  return (
    <>
      {text.split("`").map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : part))}
    </>
  );
}

const LABEL = { linux: "On Linux", darwin: "On a Mac (Metal)" } as const;

/**
 * How to get llama-server when a host has none (shown wherever the app learns
 * it is missing). The host's own platform comes first when it is known (the
 * hosts page's connection test); the other way is kept below it, since a
 * fleet may mix Macs and Linux machines.
 */
export function LlamaServerMissing({ hostName, detail, platform }: { hostName?: string | null; detail?: string | null; platform?: string | null }) {
  const order: ("linux" | "darwin")[] = platform === "darwin" ? ["darwin", "linux"] : platform === "linux" ? ["linux", "darwin"] : ["darwin", "linux"];
  const known = platform === "linux" || platform === "darwin";
  return (
    <div className="notice" data-tone="warn" role="note" data-testid="llama-server-missing" data-platform={platform ?? ""}>
      <div>
        <p>
          <strong>llama-server was not found{hostName ? ` on ${hostName}` : ""}.</strong> Models cannot start until it is installed.
        </p>
        {order.map((p, i) => (
          <p key={p} data-testid={`llama-install-${p}`}>
            {known && i === 0 ? <strong>{LABEL[p]} (this host): </strong> : `${LABEL[p]}: `}
            <WithCode text={llamaInstallHint(p).text} />.
          </p>
        ))}
        <p>
          Elsewhere, build llama.cpp and point the app at the binary with <code>LLAMA_SERVER_BIN=/path/to/llama-server</code> (or set the binary on the host&apos;s page).
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
