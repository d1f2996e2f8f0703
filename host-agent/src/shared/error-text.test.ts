import { describe, expect, it } from "vitest";
import { errorHeadline, errorReason, LOG_SAYS, LOG_TAIL_MARK } from "./error-text.ts";
import { RUN_HEADER_PREFIX, runFooter } from "./run-header.ts";
import { TELLING_LINE_MAX_CHARS, tellingLogLine } from "./telling-log-line.ts";

const HEADER = `${RUN_HEADER_PREFIX}alpha at 2026-12-01T12:00:00.000Z: /opt/llama-server --model /m/alpha.gguf --pooling bogus ===`;

/** A failure's text as the agent and the app write it: the reason, the mark, this run's log tail. */
const failure = (reason: string, tail: string[]) => `${reason}${LOG_TAIL_MARK}\n${tail.join("\n")}`;

describe("errorHeadline", () => {
  it("gives a failure's reason without the mark that introduces the log lines below it, when no log line says more", () => {
    expect(errorHeadline(`exited (crashed: killed by SIGKILL)${LOG_TAIL_MARK}\nline 1\nline 2`)).toBe("exited (crashed: killed by SIGKILL)");
    expect(errorHeadline("cannot start alpha: port 8080 is held by pid 4242 (python3); stop that process, then start it again")).toBe("cannot start alpha: port 8080 is held by pid 4242 (python3); stop that process, then start it again");
    expect(errorHeadline("  first line  \nsecond")).toBe("first line");
    expect(errorHeadline(null)).toBe("");
    expect(errorHeadline("")).toBe("");
  });

  it("adds llama-server's own line that says why a start failed (the log lines as llama-server b8xxx writes them)", () => {
    // An argument it refuses: its line, then the flag's usage.
    const pooling = failure("exited with code 1 while loading", [
      HEADER,
      'error while handling argument "--pooling": invalid value',
      "",
      "usage:",
      "--pooling {none,mean,cls,last,rank}     pooling type for embeddings, use model default if unspecified",
      "                                        (env: LLAMA_ARG_POOLING)",
      "",
      "",
      "to show complete usage, run with -h",
    ]);
    expect(errorHeadline(pooling)).toBe(`exited with code 1 while loading${LOG_SAYS}error while handling argument "--pooling": invalid value`);
    expect(errorHeadline(`alpha failed to start: ${pooling}`)).toBe(`alpha failed to start: exited with code 1 while loading${LOG_SAYS}error while handling argument "--pooling": invalid value`);
    expect(errorHeadline(failure("exited with code 1 while loading", [HEADER, "error: invalid argument: --bogus"]))).toBe(`exited with code 1 while loading${LOG_SAYS}error: invalid argument: --bogus`);
    // A model that does not load: the first error line is the cause, the later ones its consequences.
    const missing = failure("exited with code 1 while loading", [
      HEADER,
      "0.00.007.094 I srv    load_model: loading model '/m/alpha.gguf'",
      "0.00.007.264 E gguf_init_from_file: failed to open GGUF file '/m/alpha.gguf' (No such file or directory)",
      "0.00.007.412 E llama_model_load: error loading model: llama_model_loader: failed to load model from /m/alpha.gguf",
      "0.00.007.456 E llama_model_load_from_file_impl: failed to load model",
      "0.00.007.609 I srv    operator(): operator(): cleaning up before exit...",
      "0.00.008.160 E srv  llama_server: exiting due to model loading error",
    ]);
    expect(errorHeadline(missing)).toBe(`exited with code 1 while loading${LOG_SAYS}gguf_init_from_file: failed to open GGUF file '/m/alpha.gguf' (No such file or directory)`);
  });

  it("errorReason is the reason alone", () => {
    expect(errorReason(failure("exited with code 1 while loading", [HEADER, "error: invalid argument: --bogus"]))).toBe("exited with code 1 while loading");
  });
});

describe("tellingLogLine", () => {
  it("a refused argument first, in each form common/arg.cpp uses", () => {
    for (const line of [
      'error while handling argument "--cache-type-k": Unsupported cache type: q9_0',
      'error while handling argument "--temp": stof',
      'error while handling environment variable "LLAMA_ARG_POOLING": invalid value',
      "error: invalid argument: --no-such-flag",
      "error: unknown value for --flash-attn: 'maybe'",
      "error: --model is required",
    ]) {
      expect(tellingLogLine([HEADER, "0.00.001.000 W warn: something minor", line, "", "usage:", "-ctk,  --cache-type-k TYPE   KV cache data type for K"])).toBe(line);
    }
  });

  it("else the first error-level line, without its timestamp and level; info, warning and debug lines never", () => {
    expect(tellingLogLine(["0.00.001.000 I main: failed attempts: 0", "0.00.002.000 W llama: failed to mmap, reading instead", "0.00.004.319 E gguf_init_from_reader: failed to read key-value pairs", "0.00.004.432 E llama_model_load: error loading model"])).toBe("gguf_init_from_reader: failed to read key-value pairs");
    // --log-prefix without timestamps, and colour codes.
    expect(tellingLogLine(["I load: ok", "\x1b[31mE load_model: failed to load model, '/m/a.gguf'\x1b[0m"])).toBe("load_model: failed to load model, '/m/a.gguf'");
    expect(tellingLogLine(["0.00.001.000 I srv  load_model: loading model", "0.00.002.000 W warn: no GPU", "0.00.003.000 D debug: error counters reset"])).toBeNull();
  });

  it("else (a log without levels) the first line that reads as an error: aborts and uncaught exceptions too", () => {
    expect(tellingLogLine(["build: 8000 (abc)", "warning: no usable GPU found, --gpu-layers option will be ignored", "/src/ggml.c:1234: GGML_ASSERT(n_dims <= 4) failed", "Aborted"])).toBe("/src/ggml.c:1234: GGML_ASSERT(n_dims <= 4) failed");
    expect(tellingLogLine(["terminate called after throwing an instance of 'std::runtime_error'", "  what():  bad magic"])).toBe("what(): bad magic");
    expect(tellingLogLine(["llama_model_loader: loaded meta data", "main: server is listening"])).toBeNull();
  });

  it("a server that ran: its requests' errors are not why it ended; an abort is, even after them", () => {
    const serving = [
      "0.01.000.000 I srv  log_server_r: request: POST /v1/chat/completions 127.0.0.1 200",
      "0.01.001.000 E slot   get_embeddings: id  0 | task 5 | failed to get embeddings, token = 1, seq_id = 0",
      "0.01.002.000 E srv    send_error: task id = 6, error: the request exceeds the available context size",
      "0.01.003.000 E srv  operator(): got exception: invalid value for n_probs",
    ];
    // Killed from outside (SIGKILL): nothing in its log says why.
    expect(tellingLogLine(serving)).toBeNull();
    expect(errorHeadline(failure("exited (crashed: killed by SIGKILL)", serving))).toBe("exited (crashed: killed by SIGKILL)");
    expect(tellingLogLine([...serving, "/src/llama-context.cpp:812: GGML_ASSERT(n_tokens_all <= cparams.n_batch) failed", "0.01.004.000 E srv  load_model: unrelated"])).toBe("/src/llama-context.cpp:812: GGML_ASSERT(n_tokens_all <= cparams.n_batch) failed");
  });

  it("only this run's lines: an earlier run's error before the last run header is not this failure's", () => {
    expect(tellingLogLine(["error: invalid argument: --old", HEADER, "0.00.001.000 I loading"])).toBeNull();
    expect(tellingLogLine([HEADER])).toBeNull();
    expect(tellingLogLine([])).toBeNull();
  });

  it("never the agent's own lines: a run's last line (runFooter) says how it ended, in words that read as an error", () => {
    const footer = runFooter("alpha", new Date("2026-12-01T12:00:05Z"), "failed", "crash", "exited with code 1 while loading; cannot bind: failed");
    expect(tellingLogLine([HEADER, "I main: loading model", footer])).toBeNull();
    expect(tellingLogLine([HEADER, "E llama_model_load: error loading model: tensor data is not within file bounds", footer])).toBe("llama_model_load: error loading model: tensor data is not within file bounds");
    // An earlier run's end before this run's header: not this run's either.
    expect(tellingLogLine([footer, HEADER, "I main: loading model"])).toBeNull();
  });

  it("bounded: a long line is cut to TELLING_LINE_MAX_CHARS with an ellipsis", () => {
    const long = `error while handling argument "--chat-template": ${"x".repeat(500)}`;
    const line = tellingLogLine([long])!;
    expect(line).toHaveLength(TELLING_LINE_MAX_CHARS);
    expect(line.endsWith("…")).toBe(true);
    expect(long.startsWith(line.slice(0, -1))).toBe(true);
  });
});
