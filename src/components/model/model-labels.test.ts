import { FLAGS_WITH_FIELDS } from "synapse-host-agent/extra-flags";
import { describe, expect, it } from "vitest";
import { MODEL_FIELD_LABELS } from "./model-labels";

describe("the agent's pointers from a flag to the model's field", () => {
  it("name each field by the label the model page shows it under", () => {
    for (const [flag, { field, label }] of Object.entries(FLAGS_WITH_FIELDS)) {
      expect([flag, MODEL_FIELD_LABELS[field as keyof typeof MODEL_FIELD_LABELS]]).toEqual([flag, label]);
    }
  });
});
