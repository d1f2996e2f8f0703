/**
 * The "llama-server not found" banner per platform, rendered by React itself:
 * on a Linux host it leads with `npm run llama:build` and its packages, on a
 * Mac with Homebrew; with no platform known it gives both.
 */
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { LlamaServerMissing } from "./llama-missing";

const text = (platform?: string) => renderToStaticMarkup(createElement(LlamaServerMissing, { hostName: "box", platform })).replace(/<[^>]+>/g, "");

describe("LlamaServerMissing", () => {
  it("on a Linux host leads with npm run llama:build and the packages it needs", () => {
    const t = text("linux");
    expect(t).toMatch(/^llama-server was not found on box\. Models cannot start until it is installed\.On Linux \(this host\): build it with npm run llama:build in the Synapse checkout \(about 8 minutes; needs cmake, g\+\+, git and openssl: sudo apt-get install cmake g\+\+ git openssl\)/);
    expect(t.indexOf("npm run llama:build")).toBeLessThan(t.indexOf("brew install llama.cpp"));
  });

  it("on a Mac leads with brew install llama.cpp", () => {
    const t = text("darwin");
    expect(t).toContain("On a Mac (Metal) (this host): install it with brew install llama.cpp");
    expect(t.indexOf("brew install llama.cpp")).toBeLessThan(t.indexOf("npm run llama:build"));
  });

  it("with the platform unknown, gives both ways", () => {
    const t = text();
    expect(t).toContain("On a Mac (Metal): install it with brew install llama.cpp");
    expect(t).toContain("On Linux: build it with npm run llama:build");
  });
});
