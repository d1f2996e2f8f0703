/**
 * Writes the tiny llama model (see src/gguf/tiny-model.ts) into a test's
 * model root. Each call writes its own file: tests never share mutable state.
 */
import path from "node:path";
import { writeTinyModel, type TinyModelOptions } from "../../src/gguf/tiny-model.ts";

export async function tinyModel(modelRoot: string, name = "tiny.gguf", opts?: TinyModelOptions): Promise<string> {
  const file = path.join(modelRoot, name);
  await writeTinyModel(file, opts);
  return file;
}
