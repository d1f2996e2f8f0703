/** The one error the GGUF reader throws: its message names the file and what is wrong with it. */
export class GgufError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GgufError";
  }
}
