export { readGguf, readGgufSummary, summarizeGguf, GgufError } from "./reader.ts";
export type { GgufFile, GgufSummary, GgufValue, GgufArray, GgufTensorInfo } from "./reader.ts";
export { encodeGguf, writeGguf, writeGgufSplit } from "./writer.ts";
export type { GgufWriteValue, GgufWriteTensor } from "./writer.ts";
export { writeTinyModel, writeTinyModelSplit, tinyModelContent, tinyVocabulary, TINY_MODEL_DEFAULTS } from "./tiny-model.ts";
export type { TinyModelOptions } from "./tiny-model.ts";
