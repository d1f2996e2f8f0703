/**
 * How many of a server's last log lines a reader is shown at first: the
 * model page's log (log-view.tsx) and `synapse logs` without --lines.
 * No imports: the CLI runs this file under tsx from any folder.
 */
export const LOG_TAIL_LINES = 500;
