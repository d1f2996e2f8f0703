/**
 * `checkModelPath`: what a start would say about a model path, asked when
 * the model is saved rather than first when it starts. Uses the same check
 * the supervisor runs before a spawn (resolveModelPath); for a split set,
 * looks for every part by name and checks each resolves inside the model
 * roots (checkModelSet, as a start would); then reads the header(s) as
 * discovery does (describeModelFile), whose problems llama-server would meet
 * loading the file: not GGUF, a part that cannot be read, a header that says
 * it is part of a split set its name does not follow.
 */
import { stat } from "node:fs/promises";
import { AgentError, type ModelSummary } from "../protocol.ts";
import { describeMissing, missingParts, parseSplitName, splitPartPath } from "../shared/split-name.ts";
import { checkModelSet, resolveModelPath } from "../supervisor/spec-check.ts";
import type { ModelShape } from "../shared/model-shape.ts";
import { describeModelFile } from "./discover.ts";

/**
 * `checkModelPath`'s answer: the problem (null when a server could start from `modelPath`) and, when
 * there is none, what discovery would record of the file: its summary (architecture, parameter count,
 * quantization, trained context, size in bytes) and its shape (absent when its header lacks what an
 * estimate needs). A model saved by path then shows what a scanned one does.
 */
export async function checkModelPath(modelPath: string, modelRoots: string[]): Promise<{ path: string; problem: string | null; shape?: ModelShape; summary?: ModelSummary }> {
  const problem = await pathProblem(modelPath, modelRoots);
  if (problem !== null) return { path: modelPath, problem };
  const info = await describeModelFile(modelPath);
  if (info.error !== null) return { path: modelPath, problem: info.error };
  const { sizeBytes, architecture, name, parameterCount, quantization, contextLength } = info;
  const summary: ModelSummary = { sizeBytes, architecture, name, parameterCount, quantization, contextLength };
  return info.shape ? { path: modelPath, problem: null, shape: info.shape, summary } : { path: modelPath, problem: null, summary };
}

async function pathProblem(modelPath: string, modelRoots: string[]): Promise<string | null> {
  try {
    await resolveModelPath(modelPath, modelRoots);
  } catch (err) {
    if (err instanceof AgentError && err.code === "BAD_REQUEST") return err.issues?.[0]?.message ?? err.message;
    throw err;
  }
  const split = parseSplitName(modelPath);
  if (split && split.index !== 1) return `${modelPath} is part ${split.index} of a split set; give the first part, ${splitPartPath(split.prefix, 1, split.count)}`;
  if (split && split.count > 1) {
    const present = new Set<number>([1]);
    for (let i = 2; i <= split.count; i++) {
      if (await stat(splitPartPath(split.prefix, i, split.count)).then((s) => s.isFile(), () => false)) present.add(i);
    }
    const missing = missingParts(split.prefix, split.count, present);
    if (missing.length > 0) return `incomplete split set: ${describeMissing(missing)} of ${split.count} missing; llama-server needs every part to load it`;
    try {
      await checkModelSet(modelPath, modelRoots);
    } catch (err) {
      if (err instanceof AgentError && err.code === "BAD_REQUEST") return err.issues?.[0]?.message ?? err.message;
      throw err;
    }
  }
  return null;
}
