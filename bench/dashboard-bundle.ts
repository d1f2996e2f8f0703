/**
 * Benchmark: first-load JavaScript of the dashboard's pages, from the
 * production build. Prints figures; no assertions. Target: the fleet page
 * (/) ≤ 200 kB gzipped.
 *
 *   npx tsx bench/dashboard-bundle.ts [--image <dir>]
 *
 * The app is started from the build; each page's HTML is fetched and its
 * `<script src>` tags (the scripts a first visit downloads; `noModule`
 * polyfills excluded, as Next counts them) are fetched and gzipped (level 9,
 * as Next's own "First Load JS" does). The build manifest's root main files
 * are checked to be among them. CSS is reported beside, not counted.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { appImage, startBenchApp } from "./dashboard-app.ts";

const PAGES = ["/", "/discover", "/hosts", "/settings", "/models/bench-missing", "/playground"];
const TARGET_KB = 200;

interface Asset {
  url: string;
  raw: number;
  gzip: number;
}

function attrs(tag: string): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const m of tag.matchAll(/([a-zA-Z-:]+)(?:=("([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    const name = m[1]!.toLowerCase();
    out[name] = m[3] ?? m[4] ?? m[5] ?? true;
  }
  return out;
}

function assetsOf(html: string): { scripts: string[]; styles: string[]; inlineScriptBytes: number } {
  const scripts: string[] = [];
  const styles: string[] = [];
  let inlineScriptBytes = 0;
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    const a = attrs(m[1]!);
    if (typeof a.src === "string") {
      if (a.nomodule === undefined) scripts.push(a.src);
    } else inlineScriptBytes += Buffer.byteLength(m[2]!);
  }
  for (const m of html.matchAll(/<link\b([^>]*)>/gi)) {
    const a = attrs(m[1]!);
    if (a.rel === "stylesheet" && typeof a.href === "string") styles.push(a.href);
  }
  return { scripts: [...new Set(scripts)], styles: [...new Set(styles)], inlineScriptBytes };
}

const cache = new Map<string, Asset>();
async function measure(base: string, url: string): Promise<Asset> {
  const hit = cache.get(url);
  if (hit) return hit;
  const res = await fetch(new URL(url, base));
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const buf = Buffer.from(await res.arrayBuffer());
  const asset = { url, raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
  cache.set(url, asset);
  return asset;
}

const kB = (n: number) => (n / 1000).toFixed(1);

async function main() {
  const image = await appImage();
  const app = await startBenchApp(image);
  try {
    let rootMain: string[] = [];
    try {
      const manifest = JSON.parse(await readFile(path.join(image.dir, ".next", "build-manifest.json"), "utf8")) as { rootMainFiles?: string[] };
      rootMain = manifest.rootMainFiles ?? [];
    } catch {
      // not in this build's output: the script tags alone decide
    }
    const results: { page: string; js: number; raw: number; css: number; files: number; inlineKb: number }[] = [];
    for (const page of PAGES) {
      const html = await (await fetch(`${app.url}${page}`)).text();
      const { scripts, styles, inlineScriptBytes } = assetsOf(html);
      const js = await Promise.all(scripts.map((s) => measure(app.url, s)));
      const css = await Promise.all(styles.map((s) => measure(app.url, s)));
      const missingRoot = rootMain.filter((f) => !scripts.some((s) => s.endsWith(f)));
      if (missingRoot.length) process.stderr.write(`warning: ${page} does not load the manifest's root main files ${missingRoot.join(", ")}\n`);
      results.push({ page, js: js.reduce((a, b) => a + b.gzip, 0), raw: js.reduce((a, b) => a + b.raw, 0), css: css.reduce((a, b) => a + b.gzip, 0), files: js.length, inlineKb: inlineScriptBytes });
      if (page === "/") {
        console.log("fleet page (/) first-load scripts, gzipped:");
        for (const a of [...js].sort((x, y) => y.gzip - x.gzip)) console.log(`  ${kB(a.gzip).padStart(7)} kB  (${kB(a.raw).padStart(7)} kB raw)  ${a.url}`);
      }
    }
    console.log("");
    console.log("page                     first-load JS (gzip)   raw        files  CSS (gzip)  inline RSC/script (raw)");
    for (const r of results) {
      console.log(`${r.page.padEnd(24)} ${`${kB(r.js)} kB`.padStart(12)}        ${`${kB(r.raw)} kB`.padStart(9)}  ${String(r.files).padStart(5)}  ${`${kB(r.css)} kB`.padStart(9)}  ${`${kB(r.inlineKb)} kB`.padStart(9)}`);
    }
    const fleet = results[0]!;
    console.log("");
    console.log(`fleet page first-load JS: ${kB(fleet.js)} kB gzipped (target ≤ ${TARGET_KB} kB: ${fleet.js / 1000 <= TARGET_KB ? "met" : "NOT met"})`);
  } finally {
    await app.stop();
    await image.dispose();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
