/**
 * Chromium through playwright-core (the system's browser: no download).
 *
 *   const browser = useBrowser();                           // one Chromium per test file
 *   it("shows the fleet", async () => {
 *     const { page } = await openPage(browser(), app, { name: "home-empty" });
 *     await page.goto("/");
 *     await expectTestId(page, "empty-state");
 *   });
 *
 * openPage gives each test its own browser context (cookies, storage) with
 * the app's URL as base URL and, when the app has SYNAPSE_API_TOKEN, its
 * session cookie (pass `login: false` to see the login redirect). When the
 * test finishes, pass or fail, the page's final state is saved to
 * test-results/screenshots/<name>.png, the context is closed, and the test
 * FAILS if the page threw (pageerror) or logged a console error, unless the
 * message matches `allowConsole`.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, onTestFinished } from "vitest";
import { sessionValue, SESSION_COOKIE } from "../../src/server/http/guard";
import type { AppServer } from "../../test/harness/app-server";
import { REPO_ROOT } from "../../test/harness/app-build";

export const SCREENSHOTS_DIR = path.join(REPO_ROOT, "test-results", "screenshots");

/** Flags from ENVIRONMENT.md: no sandbox (root in CI), no GPU, nothing that phones home. */
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export function chromiumPath(): string {
  return process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
}

export async function launchBrowser(): Promise<Browser> {
  try {
    return await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  } catch (err) {
    throw new Error(`Chromium did not start from ${chromiumPath()} (install the Debian package chromium, or set CHROMIUM_BIN): ${(err as Error).message}`, { cause: err });
  }
}

/** Launches Chromium before the file's tests and closes it after; call at the top of a test file. */
export function useBrowser(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error("the browser is not running (useBrowser() must be called at the top of the test file)");
    return browser;
  };
}

/** Console errors every page may log without failing a test (none: add a pattern here only with the reason). */
export const DEFAULT_ALLOWED_CONSOLE: RegExp[] = [];

export interface PageOptions {
  /** Screenshot name: test-results/screenshots/<name>.png (letters, digits, - and _). */
  name: string;
  /** Console errors (and page errors) whose text matches one of these do not fail the test. */
  allowConsole?: RegExp[];
  /** false: no session cookie even when the app has an API token. */
  login?: boolean;
  viewport?: { width: number; height: number };
}

export interface CheckedPage {
  page: Page;
  context: BrowserContext;
  /** Page errors and console errors seen so far (what will fail the test). */
  readonly problems: string[];
  /** Saves a screenshot now: test-results/screenshots/<name>[-<label>].png; returns the path. */
  screenshot(label?: string): Promise<string>;
}

function fileName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]+/g, "_");
}

/** A fresh context and page on `app`, checked for errors and screenshotted when the test finishes. */
export async function openPage(browser: Browser, app: Pick<AppServer, "url" | "env">, options: PageOptions): Promise<CheckedPage> {
  const context = await browser.newContext({ baseURL: app.url, viewport: options.viewport ?? { width: 1280, height: 800 } });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  const token = app.env.SYNAPSE_API_TOKEN;
  if (token && options.login !== false) {
    await context.addCookies([{ name: SESSION_COOKIE, value: sessionValue(token), url: app.url, httpOnly: true, sameSite: "Strict" }]);
  }
  const page = await context.newPage();
  const problems: string[] = [];
  const allowed = (text: string) => [...DEFAULT_ALLOWED_CONSOLE, ...(options.allowConsole ?? [])].some((re) => re.test(text));
  page.on("pageerror", (err) => {
    const text = `page error: ${err.message}`;
    if (!allowed(text)) problems.push(text);
  });
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const loc = msg.location();
    const text = `console error: ${msg.text()}${loc.url ? ` (${loc.url}:${loc.lineNumber})` : ""}`;
    if (!allowed(text)) problems.push(text);
  });
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const base = fileName(options.name);
  const screenshot = async (label?: string) => {
    const file = path.join(SCREENSHOTS_DIR, `${base}${label ? `-${fileName(label)}` : ""}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
    return file;
  };
  onTestFinished(async () => {
    try {
      if (!page.isClosed()) await screenshot();
    } finally {
      await context.close().catch(() => undefined);
    }
    if (problems.length > 0) throw new Error(`the page reported ${problems.length} error(s):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  });
  return { page, context, problems, screenshot };
}

/** The element with data-testid=`id`, once visible (throws naming the id at the deadline). */
export async function expectTestId(page: Page, id: string, options: { timeoutMs?: number } = {}): Promise<Locator> {
  const locator = page.getByTestId(id);
  try {
    await locator.first().waitFor({ state: "visible", timeout: options.timeoutMs ?? 15_000 });
  } catch (err) {
    throw new Error(`[data-testid="${id}"] did not become visible on ${page.url()}: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
  return locator;
}

/** Waits until `text` appears inside the element with data-testid=`id` (lists fill in after the page loads). */
export async function expectTextIn(page: Page, id: string, text: string, options: { timeoutMs?: number } = {}): Promise<Locator> {
  const container = await expectTestId(page, id, options);
  try {
    await container.getByText(text, { exact: false }).first().waitFor({ state: "visible", timeout: options.timeoutMs ?? 15_000 });
  } catch (err) {
    const shown = ((await container.first().textContent().catch(() => "")) ?? "").slice(0, 500);
    throw new Error(`[data-testid="${id}"] did not show ${JSON.stringify(text)} on ${page.url()}; it shows: ${JSON.stringify(shown)}`, { cause: err });
  }
  return container;
}
