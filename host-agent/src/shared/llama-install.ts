/**
 * How to get llama-server on each platform, in one place for the agent's
 * "not found" error, the app's API error and the dashboard's banner. On a
 * Mac, Homebrew's llama.cpp (a Metal build); on Linux, where distributions
 * do not package it, the project's own build (`npm run llama:build`, the
 * same CPU build the tests use), which puts the binary in the cache folder
 * the agent searches.
 */

/** Debian/Ubuntu packages `npm run llama:build` needs (apt brings make with cmake). */
export const LLAMA_BUILD_PACKAGES = ["cmake", "g++", "git", "openssl"] as const;

export interface LlamaInstallHint {
  /** "linux", "darwin" or "other". */
  platform: "linux" | "darwin" | "other";
  /** The one command that gets llama-server there. */
  command: string;
  /** A sentence: the command, what it needs, what happens after. */
  text: string;
}

/** The way to install llama-server on `platform` (a `process.platform` value, as hello reports it). */
export function llamaInstallHint(platform: string | null | undefined): LlamaInstallHint {
  if (platform === "darwin") {
    return { platform: "darwin", command: "brew install llama.cpp", text: "install it with `brew install llama.cpp` (a Metal build), then check it with `llama-server --version`" };
  }
  if (platform === "linux") {
    const packages = LLAMA_BUILD_PACKAGES.join(" ");
    return {
      platform: "linux",
      command: "npm run llama:build",
      text: `build it with \`npm run llama:build\` in the Synapse checkout (about 8 minutes; needs ${LLAMA_BUILD_PACKAGES.slice(0, -1).join(", ")} and ${LLAMA_BUILD_PACKAGES.at(-1)}: \`sudo apt-get install ${packages}\`); the agent finds the build in ~/.cache/synapse by itself`,
    };
  }
  return { platform: "other", command: "LLAMA_SERVER_BIN=/path/to/llama-server", text: "build llama.cpp's llama-server and set `LLAMA_SERVER_BIN` to its path" };
}
