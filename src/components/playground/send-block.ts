/**
 * Why the Playground cannot send a message to the chosen model now, said beside its greyed-out Send (and
 * announced when Enter is pressed there), with the page's action that fixes it. Pure. The words are the
 * state line's and the gateway's for the same states (model-picker.tsx ModelStateLine, readiness.ts):
 *
 *   no model chosen          "Choose a model first."
 *   disabled                 enable it on its model page (no action here)
 *   failed                   points to its last error (the state line has it), what to do unless the error says it; Start
 *   crashed, none planned    auto-restart is off; Start
 *   stopped / stopping       load policy "always": a message does not start it; Start
 *
 * null for a model a message can be sent to (ready, loading, on demand, restarting after a crash).
 */
import type { ModelChoice } from "./model-choice";

export interface SendBlock {
  /** One or two sentences: why, then what to do. */
  text: string;
  /** The fix is to start the model (the page's Start button). */
  start: boolean;
}

export function sendBlock(choice: ModelChoice | null): SendBlock | null {
  if (!choice) return { text: "Choose a model first.", start: false };
  const to = `Cannot send to ${choice.name}`;
  if (choice.readiness === "disabled") return { text: `${to}: it is disabled. Enable it on its model page to use it.`, start: false };
  if (choice.readiness !== "needs-start") return null;
  switch (choice.display) {
    case "failed":
      // Its error is in the state line above (ModelStateLine's "last error"), often a long one: pointed to, not repeated.
      return {
        text: `${to}: it failed${choice.error ? " (its last error is above, under Model)" : ""}. It is not started again until someone starts it${choice.error && !choice.errorSaysStartAgain ? ": fix what the error says, then start it." : "."}`,
        start: true,
      };
    case "exited":
      return { text: `${to}: it crashed${choice.error ? " (its last error is above, under Model)" : ""}, and the app does not restart it (auto-restart is off). Start it to chat.`, start: true };
    default:
      return { text: `${to}: it is ${choice.display === "stopping" ? "stopping" : "stopped"}, and its load policy "always" means a message does not start it. Start it to chat.`, start: true };
  }
}
