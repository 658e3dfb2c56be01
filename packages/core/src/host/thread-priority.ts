import { getPriority, setPriority } from "node:os";

/**
 * How far below the thread that started it a blob pool worker runs (nice steps). The main
 * thread sets a backup's pace: it walks, decides and packs while the workers seal what it
 * hands them. With two cores, two workers, V8's helpers and libuv's pool all runnable, the
 * kernel gave each an equal share, and a first backup's main thread (3.7 s of CPU in 8.2 s)
 * waited for a core most of the rest of its time: a profile put 1.1 s of it inside the calls
 * that wake a worker. Ten steps lower (a tenth of the weight), the workers still take every
 * cycle the main thread leaves. 200,000 small files, three interleaved runs each: first
 * backup 7.99–8.30 → 7.44–7.75 s (19 steps: 7.27–7.88); restoring them into tmpfs
 * 7.00–7.53 → 6.85–6.96 s; a mixed restore (scale 0.25) 0.86–0.88 → 0.80–0.85 s.
 */
export const WORKER_NICENESS = 10;

/** The lowest priority Linux has. */
const NICEST = 19;

/**
 * Lowers the calling thread's scheduling priority by WORKER_NICENESS, from what it inherited
 * (a user's `nice holdfast` stays below that). Linux only: there the nice value is each
 * thread's own, where elsewhere the same call would set the whole process's.
 */
export function yieldToMainThread(): void {
	if (process.platform !== "linux") return;
	try {
		setPriority(0, Math.min(NICEST, getPriority(0) + WORKER_NICENESS));
	} catch {
		// Refused (a sandbox without the call): the thread keeps its parent's priority, as before.
	}
}
