import { describe, expect, it } from "vitest";
import { labelsByPrefix } from "~/components/form/form-failure";
import { estimateFailureText, estimateRefusal } from "./estimate-failure";
import { newFlagRow } from "./flag-rows";

/** A refused models.estimate as the client sees it: the formatter's message (paths) and `data.issues`. */
function refused(issues: { path: string; message: string }[] | null, message = (issues ?? []).map((i) => `${i.path}: ${i.message}`).join("; ")) {
  return Object.assign(new Error(message), { data: { code: "BAD_REQUEST", httpStatus: 400, issues } });
}

const fieldLabel = labelsByPrefix({ ctxSize: "Context size", parallel: "Parallel slots", extraFlags: "Extra flags" });

describe("the memory-estimate panel's refusal", () => {
  it("names a refused flag row by its flag, and other fields by their labels, not by their paths", () => {
    const sent = [newFlagRow("--temp", "0.5"), newFlagRow("--metrics"), newFlagRow("--seed", "abc")];
    const err = refused([
      { path: "ctxSize", message: "must be at most 1048576" },
      { path: "extraFlags.2.value", message: "--seed needs an integer" },
    ]);
    expect(estimateFailureText(err, sent, fieldLabel)).toBe("Cannot estimate these values: Context size: must be at most 1048576; Extra flag --seed: needs an integer");
  });

  it("names the same flag before and after a row above it is removed, though its index changes", () => {
    const temp = newFlagRow("--temp", "0.5");
    const seed = newFlagRow("--seed", "abc");
    const topK = newFlagRow("--top-k", "40");
    const want = "Cannot estimate these values: Extra flag --seed: needs an integer";
    expect(estimateFailureText(refused([{ path: "extraFlags.1.value", message: "--seed needs an integer" }]), [temp, seed, topK], fieldLabel)).toBe(want);
    // Asked again without --temp: the server now says index 0; index 1 is --top-k.
    expect(estimateFailureText(refused([{ path: "extraFlags.0.value", message: "--seed needs an integer" }]), [seed, topK], fieldLabel)).toBe(want);
  });

  it("names the list's own issue, an index no row was sent with, and a path with no label", () => {
    const sent = [newFlagRow("--seed", "1")];
    const err = refused([
      { path: "extraFlags", message: "at most 32 extra flags" },
      { path: "extraFlags.5.value", message: "--seed needs an integer" },
      { path: "id", message: "no model with id m1" },
    ]);
    expect(estimateFailureText(err, sent, fieldLabel)).toBe("Cannot estimate these values: Extra flags: at most 32 extra flags; Extra flags: --seed needs an integer; id: no model with id m1");
  });

  it("shows an error without issues by its own message", () => {
    expect(estimateFailureText(new Error("fetch failed"), [], fieldLabel)).toBe("Cannot estimate these values: fetch failed");
    expect(estimateFailureText(refused(null, "the host is unreachable"), [], fieldLabel)).toBe("Cannot estimate these values: the host is unreachable");
  });
});

describe("values the API would refuse, refused before asking", () => {
  const fieldLabelCtx = labelsByPrefix({ ctxSize: "Context size", parallel: "Parallel slots", extraFlags: "Extra flags" });

  it("accepts what the API accepts: null, nothing to show", () => {
    const sent = [newFlagRow("--seed", "7"), newFlagRow("--metrics")];
    expect(estimateRefusal({ id: "m1", ctxSize: 4096, parallel: null, extraFlags: [{ flag: "--seed", value: "7" }, { flag: "--metrics" }] }, sent, fieldLabelCtx)).toBeNull();
    expect(estimateRefusal({ id: "m1" }, [], fieldLabelCtx)).toBeNull();
  });

  it("words a refusal as the panel words the API's own refusal of the same values", () => {
    const sent = [newFlagRow("--temp", "0.5"), newFlagRow("--seed", "abc")];
    const input = { id: "m1", ctxSize: 2_000_000, extraFlags: [{ flag: "--temp", value: "0.5" }, { flag: "--seed", value: "abc" }] };
    const text = estimateRefusal(input, sent, fieldLabelCtx);
    expect(text).toBe('Cannot estimate these values: Context size: must be between 0 and 1048576 (0 = the model\'s trained context length); Extra flag --seed: does not take "abc"; it takes a whole number from -2147483648 to 2147483647');
    // The API's refusal (its issues, paths by index) in the panel's words: the same line.
    const api = refused([
      { path: "ctxSize", message: "must be between 0 and 1048576 (0 = the model's trained context length)" },
      { path: "extraFlags.1.value", message: '--seed does not take "abc"; it takes a whole number from -2147483648 to 2147483647' },
    ]);
    expect(estimateFailureText(api, sent, fieldLabelCtx)).toBe(text);
  });

  it("names a refused row by the flag of the row at that index as sent", () => {
    const sent = [newFlagRow("--seed", "abc"), newFlagRow("--top-k", "x")];
    expect(estimateRefusal({ id: "m1", extraFlags: [{ flag: "--seed", value: "abc" }, { flag: "--top-k", value: "x" }] }, sent, fieldLabelCtx)).toBe(
      'Cannot estimate these values: Extra flag --seed: does not take "abc"; it takes a whole number from -2147483648 to 2147483647; Extra flag --top-k: does not take "x"; it takes a whole number from -2147483648 to 2147483647',
    );
  });
});
