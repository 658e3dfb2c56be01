import { PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics, setFlagsFromString } from "node:v8";

// The settings holdfast gives Node and V8, each set as the command runs: no command starts a
// second Node for settings read only at a process's start.
//
// Restore and check --read-data used to run in a second Node started with one malloc arena, a
// fixed mmap threshold and collections on the thread that needs them (`MALLOC_ARENA_MAX=1`,
// `MALLOC_MMAP_THRESHOLD_`, `--single-threaded-gc`). Since their reads are held to a budget and
// their workers collect as they go, those settings no longer lowered the peak the benchmark
// counts (the first Node's own pages included), and starting a second Node cost more than it
// saved: on a host where memory touched for the first time is slow, Node alone starts in about
// 100 ms, and the second start cost a restore or a check 0.2 to 0.3 s. Scale
// 0.25, interleaved, into tmpfs: the mixed restore 1.81–1.94 s in two Nodes, 1.57–1.80 in one,
// peaks 150–154 and 150–157 MiB (restic 1.80–2.02 s, 92–97 MiB); 50,000 small files 3.92–4.42
// against 3.62–3.80 s at 150–155 MiB either way; `check --read-data` 1.63–1.75 against
// 1.33–1.42 s, 5 MiB more at its peak. At scale 1 the mixed restore peaks about 10 MiB higher
// (185 against 175 MiB) in less time; a 3 GB file restores in 127 MiB. A user may still set
// glibc's variables for the whole process.

/**
 * Bytecode a function runs before V8 considers optimizing it: four times Node 20's 132 KiB
 * (Node 22 and later start at 66 KiB, with a quicker compiler, Maglev, below).
 * Each thread (the main one and every worker) compiles its own hot code, on the same two
 * cores: in a first backup of 50,000 small files, V8's optimizing compiler took 0.53 s of CPU
 * (perf), 284 compilations of 1.06 s in all, some functions several times over; with this
 * budget 144 of 0.44 s. Measured interleaved at scale 0.25, this build against the last:
 * mixed restore into tmpfs (with the single-threaded collector) 1.50–1.70 → 1.31–1.50 s, CPU
 * 1.96–2.17 → 1.62–1.85 s; mixed first backup 1.45–1.62 → 1.35–1.43 s, CPU 2.35–2.57 → 2.06–
 * 2.19 s; the small files' first backup the same (2.8–3.3 s both). Set as a command starts,
 * before its code runs: V8 reads it as it sets each function's budget.
 */
export const COMPILE_BUDGET = "--interrupt-budget=524288";

/**
 * Every command on Node 20: the compile budget, set before the bundle loads. V8 12 (Node 22)
 * has no such flag, and V8 prints "Error: unrecognized flag" for one it does not know: the
 * budget is Node 20's, measured there, and later Nodes keep their own.
 */
export function setCompileBudget(v8Version = process.versions.v8): void {
	const flag = compileBudgetFor(v8Version);
	if (flag) setFlagsFromString(flag);
}

/** The compile budget's flag for this V8, or undefined where it has none. */
export function compileBudgetFor(v8Version: string): string | undefined {
	return Number.parseInt(v8Version, 10) < 12 ? COMPILE_BUDGET : undefined;
}

/**
 * The old generation may grow to 1.2 times what lived after a collection, not about twice:
 * the main thread of a small-file restore keeps a plan of many files and left 30–40 MiB of
 * garbage beside it (peak 165–193 → 142–146 MiB). A backup's main thread, where 20–25 MiB
 * live, reached 40–46 MiB of old space before collecting; young-generation.ts has what the
 * two settings together cost and save there. A backup has it from its start; a restore and a
 * check once their heap holds 80 MiB (HEAP_SLACK). Set as the command runs, where V8 reads
 * it at each collection; a Node that does not know it ignores it there, where as an option it
 * would refuse to start.
 */
export const HEAP_GROWTH = "--heap-growing-percent=20";

/**
 * The least a restore's or check's old generation may grow by after a collection: HEAP_GROWTH
 * (20 %) from 80 MiB of live heap on, this many bytes below. On a small heap 20 % is a few
 * MiB, and a mixed restore from the S3 test server (scale 0.25, about 20 MiB live), whose
 * requests leave objects that outlive the young generation, collected it whole seven or eight
 * times where a local restore did once. Interleaved, into tmpfs, with V8's own growth below
 * 32 MiB instead: 1.29–1.34 → 1.18–1.24 s, and in a later run 1.17–1.34 → 1.06–1.10 s, peaks
 * the same or lower; but a bench run's restore of 50,000 small files peaked at 192 MiB against
 * 157, where V8 let a heap slowed by the disk grow as it chose. A fixed amount bounds that: the
 * same restore from S3 1.20–1.33 s at 20 %, 1.10–1.24 s with V8's growth, 1.16–1.30 s with
 * 12 MiB and 1.16–1.19 s with 16; the 50,000 files at 151–153 MiB before, 152–155 with 16.
 */
export const HEAP_SLACK = 16 * 1024 * 1024;

/** The growth flag for an old generation holding `used` bytes after a collection. */
export function heapGrowthFor(used: number): string {
	// In steps of ten, the flag set again only when a collection moves the heap past one; at
	// most fivefold, as a heap of a few MiB at start-up would otherwise ask.
	const percent = Math.min(400, Math.max(20, Math.ceil((HEAP_SLACK / Math.max(used, 1)) * 10) * 10));
	return `--heap-growing-percent=${percent}`;
}

/**
 * Sets the old generation's growth by the heap's size now and after each collection (V8 reads
 * the flag as it sets the next limit); set again only when it changes. Returns a function that
 * stops watching.
 */
export function growHeapBySize(): () => void {
	let set: string | undefined;
	const choose = () => {
		const wanted = heapGrowthFor(getHeapStatistics().used_heap_size);
		if (wanted !== set) setFlagsFromString((set = wanted));
	};
	choose();
	const observer = new PerformanceObserver(choose);
	observer.observe({ entryTypes: ["gc"] });
	return () => observer.disconnect();
}
