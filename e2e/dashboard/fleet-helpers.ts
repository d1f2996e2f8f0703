/**
 * Helpers for the dashboard's e2e tests: arrange a fleet of tiny models
 * through the API, and watch the fleet table from inside the page.
 */
import type { Page } from "playwright-core";
import { expect } from "vitest";
import { freePort } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import type { AppServer } from "../../test/harness/app-server";

export const WIDE = { width: 1280, height: 800 };
export const NARROW = { width: 390, height: 844 };

/** Small runtime defaults that suit the tiny model (context 256) on 2 shared cores. */
export async function tinyDefaults(app: AppServer): Promise<void> {
  const r = await app.trpc.mutation("settings.update", { ctxSize: 256, gpuLayers: 0, threads: 1, batchSize: 64, ubatchSize: 64, flashAttn: "off", parallel: 1, readinessDeadlineMs: 60_000, stopGraceMs: 3000 });
  expect(r.error, JSON.stringify(r.error)).toBeUndefined();
}

export async function localHostId(app: AppServer): Promise<string> {
  const r = await app.trpc.query<{ id: string; name: string }[]>("hosts.list");
  expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  const host = r.data?.[0];
  if (!host) throw new Error("the app has no host");
  return host.id;
}

export interface ArrangedModel {
  id: string;
  name: string;
  port: number;
  enabled: boolean;
}

/** Writes a tiny GGUF per model into the app's model root and registers each through the API. */
export async function arrangeModels(app: AppServer, specs: { name: string; enabled: boolean }[]): Promise<ArrangedModel[]> {
  await tinyDefaults(app);
  const hostId = await localHostId(app);
  const out: ArrangedModel[] = [];
  for (const s of specs) {
    const file = await tinyModel(app.dirs.modelRoot, `${s.name}.gguf`);
    const port = await freePort();
    const r = await app.trpc.mutation<{ id: string }>("models.create", { name: s.name, hostId, filePath: file, port, enabled: s.enabled });
    expect(r.error, JSON.stringify(r.error)).toBeUndefined();
    out.push({ id: r.data!.id, name: s.name, port, enabled: s.enabled });
  }
  return out;
}

export interface StatusRow {
  modelId: string;
  name: string;
  state: string;
  desired: string;
  pid: number | null;
  restarts: number;
  lastError: string | null;
  gpuBackend: string | null;
  cause: string | null;
}

export async function status(app: AppServer): Promise<StatusRow[]> {
  const r = await app.trpc.query<StatusRow[]>("servers.status");
  expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  return r.data!;
}

/**
 * Records, inside the page, every badge state each fleet row shows (in
 * order, repeats collapsed), and marks the window so a reload would be
 * noticed. Call before page.goto.
 */
export async function watchFleet(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { __stateLog: Record<string, string[]> };
    w.__stateLog = {};
    const record = () => {
      for (const row of document.querySelectorAll<HTMLElement>('[data-testid="model-row"]')) {
        const name = row.dataset.modelName ?? "?";
        const badge = row.querySelector<HTMLElement>('[data-testid="state-badge"]');
        const s = badge?.dataset.state;
        if (!s) continue;
        const log = (w.__stateLog[name] ??= []);
        if (log[log.length - 1] !== s) log.push(s);
      }
    };
    new MutationObserver(record).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
  });
}

/** Marks the loaded document; `stillSameDocument` is false after any reload or navigation. */
export async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
}
export async function stillSameDocument(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true);
}

export async function stateLog(page: Page): Promise<Record<string, string[]>> {
  return page.evaluate(() => (window as unknown as { __stateLog: Record<string, string[]> }).__stateLog);
}

/** Waits until the fleet row of `name` has the server state `state` (the row's data-state). */
export async function waitForRowState(page: Page, name: string, state: string, timeoutMs = 60_000): Promise<void> {
  try {
    await page.waitForFunction(
      ([n, s]) => document.querySelector(`[data-testid="model-row"][data-model-name="${n}"]`)?.getAttribute("data-state") === s,
      [name, state] as const,
      { timeout: timeoutMs, polling: 50 },
    );
  } catch (err) {
    const now = await page.evaluate((n) => document.querySelector(`[data-testid="model-row"][data-model-name="${n}"]`)?.textContent ?? "(no row)", name);
    throw new Error(`row ${name} did not reach ${state} within ${timeoutMs} ms; it shows: ${now}`, { cause: err });
  }
}

export function row(page: Page, name: string) {
  return page.locator(`[data-testid="model-row"][data-model-name="${name}"]`);
}

/** Geometry of each fleet row and its badge, to check that state changes move nothing. */
export async function rowGeometry(page: Page): Promise<Record<string, { top: number; height: number; badgeLeft: number; badgeWidth: number; actionsLeft: number }>> {
  return page.evaluate(() => {
    const out: Record<string, { top: number; height: number; badgeLeft: number; badgeWidth: number; actionsLeft: number }> = {};
    for (const row of document.querySelectorAll<HTMLElement>('[data-testid="model-row"]')) {
      const r = row.getBoundingClientRect();
      const b = row.querySelector('[data-testid="state-badge"]')!.getBoundingClientRect();
      const a = row.querySelector('[role="group"]')!.getBoundingClientRect();
      out[row.dataset.modelName ?? "?"] = { top: Math.round(r.top), height: Math.round(r.height), badgeLeft: Math.round(b.left), badgeWidth: Math.round(b.width), actionsLeft: Math.round(a.left) };
    }
    return out;
  });
}

/** The cell of `name`'s fleet row under the column headed `header` (as the table shows it: "State", "Last error"). */
export async function columnCell(page: Page, name: string, header: string) {
  const headers = (await page.locator('[data-testid="model-list"] thead th').allTextContents()).map((h) => h.trim().toLowerCase());
  const i = headers.indexOf(header.toLowerCase());
  if (i < 0) throw new Error(`the fleet table has no column "${header}"; its columns: ${headers.join(", ")}`);
  return row(page, name).locator(`:scope > :nth-child(${i + 1})`);
}

export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** Where a name is written on the page, and whether all of it can be read. */
export interface TextBox {
  name: string;
  /** An element under the scope shows the name (the innermost one whose text contains it). */
  found: boolean;
  /**
   * Part of the text is cut: it runs past an ancestor that hides overflow (an ellipsis, a narrow
   * segment, a fixed-width cell) or past the window's right edge. Null when not found.
   */
  clippedBy: string | null;
  /** The laid-out text's box (a Range over the element's contents), CSS px; null when not found. */
  box: Box | null;
}

/**
 * For each name, the innermost visible element under `scope` (a CSS selector) whose text contains it:
 * its text's box, and what, if anything, cuts it. Measured on the laid-out text, not the element, so
 * text hidden by `overflow: hidden` or an ellipsis counts as cut.
 */
export async function textBoxes(page: Page, scope: string, names: readonly string[]): Promise<TextBox[]> {
  return page.evaluate(
    ([sel, list]) => {
      const root = document.querySelector(sel);
      return list.map((name) => {
        const holders = root ? [...root.querySelectorAll("*")].filter((e) => e.textContent?.includes(name) && e.getClientRects().length > 0) : [];
        const el = holders.find((e) => ![...e.children].some((c) => c.textContent?.includes(name)));
        if (!el) return { name, found: false, clippedBy: null, box: null };
        const range = document.createRange();
        range.selectNodeContents(el);
        const r = range.getBoundingClientRect();
        const box = { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
        let clippedBy: string | null = r.right > document.documentElement.clientWidth + 0.5 ? "the window's right edge" : null;
        for (let a: Element | null = el; a && !clippedBy; a = a.parentElement) {
          const s = getComputedStyle(a);
          if (s.overflowX === "visible" && s.overflowY === "visible") continue;
          const c = a.getBoundingClientRect();
          if (r.left < c.left - 0.5 || r.right > c.right + 0.5 || r.top < c.top - 0.5 || r.bottom > c.bottom + 0.5) clippedBy = `${a.tagName.toLowerCase()}.${[...a.classList].join(".")} (overflow ${s.overflowX})`;
        }
        return { name, found: true, clippedBy, box };
      });
    },
    [scope, names] as const,
  );
}

/** Pairs of boxes that share area (touching edges do not count), as "a × b". */
export function overlapping(boxes: readonly { name: string; box: Box | null }[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!.box;
      const b = boxes[j]!.box;
      if (a && b && Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5) out.push(`${boxes[i]!.name} × ${boxes[j]!.name}`);
    }
  }
  return out;
}
