/**
 * The model form's extra-flag rows, in Chromium against the production build: a flag value the
 * server refuses is shown beside its own row, naming the flag ("Extra flag --seed: does not take \"abc\"; …", the flag said once);
 * removing a row above it leaves the message with the same flag (not with the row now at its
 * index); editing the row clears it, and the fixed flags save.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { arrangeModels, WIDE, type ArrangedModel } from "./fleet-helpers";

// A refused save is an HTTP 400, which Chromium logs as a failed resource.
const REFUSED = [/status of 400 \(Bad Request\)/];

const browser = useBrowser();

describe("model form: extra-flag rows (production build)", () => {
  let app: AppServer;
  let model: ArrangedModel;
  const FLAGS = [
    { flag: "--temp", value: "0.5" },
    { flag: "--metrics" },
    { flag: "--seed", value: "42" },
    { flag: "--top-k", value: "40" },
  ];

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-model-flags" });
    const [arranged] = await arrangeModels(app, [{ name: "flags", enabled: false }]);
    model = arranged!;
    const r = await app.trpc.mutation("models.update", { id: model.id, extraFlags: FLAGS });
    expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("a refused flag value stays beside its flag's row, naming the flag, when a row above it is removed", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "model-flags-refused", viewport: WIDE, allowConsole: REFUSED });
    await page.goto(`/models/${model.id}`);
    const form = await expectTestId(page, "model-form");
    /** The row (list item) of a flag, found by its Remove button as a user finds it. */
    const rowOf = (flag: string) => form.locator("li", { has: page.getByRole("button", { name: `Remove ${flag}`, exact: true }) });
    const errorsBeside = async () => {
      const out: Record<string, string> = {};
      for (const { flag } of FLAGS) {
        if ((await rowOf(flag).count()) === 0) continue;
        const texts = await rowOf(flag).locator(".field-error").allTextContents();
        if (texts.length > 0) out[flag] = texts.join(" | ");
      }
      return out;
    };
    const seedValue = rowOf("--seed").getByRole("textbox");
    await expect.poll(() => seedValue.inputValue()).toBe("42");

    // The third row's value is not an integer: the server refuses extraFlags.2.value.
    await seedValue.fill("abc");
    await page.getByTestId("save-model").click();
    const message = 'Extra flag --seed: does not take "abc"; it takes a whole number from -2147483648 to 2147483647';
    await expect.poll(errorsBeside).toEqual({ "--seed": message });
    expect(await form.getByTestId("form-errors").textContent()).toBe("Not saved: fix the fields marked below.");
    expect(await seedValue.getAttribute("aria-invalid")).toBe("true");
    const errorId = await seedValue.getAttribute("aria-describedby");
    expect(await form.locator(`[id="${errorId}"]`).textContent()).toBe(message);
    await screenshot("refused");

    // Remove the --temp row above it: the --top-k row is now third, the message stays with --seed.
    await page.getByRole("button", { name: "Remove --temp", exact: true }).click();
    await expect.poll(() => rowOf("--temp").count()).toBe(0);
    expect(await errorsBeside()).toEqual({ "--seed": message });
    expect(await seedValue.inputValue()).toBe("abc");
    expect(await seedValue.getAttribute("aria-invalid")).toBe("true");
    expect(await rowOf("--top-k").getByRole("textbox").getAttribute("aria-invalid")).toBeNull();
    // Adding a row moves nothing either.
    await page.getByRole("button", { name: "Add flag", exact: true }).click();
    await expect.poll(() => form.locator("li", { has: page.getByRole("button", { name: /^Remove / }) }).count()).toBe(4);
    expect(await errorsBeside()).toEqual({ "--seed": message });
    await screenshot("row-above-removed");

    // Editing the --seed row clears its message (and the summary, nothing else being refused).
    await seedValue.fill("7");
    await expect.poll(errorsBeside).toEqual({});
    expect(await form.getByTestId("form-errors").count()).toBe(0);
    expect(await seedValue.getAttribute("aria-invalid")).toBeNull();

    // The added --metrics row duplicates one already there; remove it, then the fixed flags save.
    await form.locator("li", { has: page.getByRole("button", { name: "Remove --metrics" }) }).last().getByRole("button").click();
    await page.getByTestId("save-model").click();
    await expect.poll(() => page.getByTestId("save-state").textContent(), { timeout: 10_000 }).toBe("Saved.");
    const stored = await app.db().model.findUniqueOrThrow({ where: { id: model.id } });
    expect(JSON.parse(stored.extraFlags)).toEqual([{ flag: "--metrics" }, { flag: "--seed", value: "7" }, { flag: "--top-k", value: "40" }]);
  });
});
