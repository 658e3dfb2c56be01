import { PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics, setFlagsFromString } from "node:v8";

// The settings holdfast gives Node, V8 and glibc.
//
// Restore and check --read-data open blobs by the thousand on two worker threads. glibc gives
// each thread an arena, and its mmap threshold rises to the largest buffer freed, so freed
// blob-sized buffers stay in the arenas (30–35 MiB each at a restore's peak). glibc reads its
// settings only at start: those commands run in a second Node started with them.

/** Set in the Node started with the settings: it runs the command itself. */
export const TUNED_MARK = "HOLDFAST_MEMORY_TUNED";

/**
 * One arena for every thread, and buffers from 2 MiB on mapped and unmapped on their own:
 * freed blobs go back to the system. Measured on a mixed restore (scale 0.25): peak RSS
 * 216–257 MiB before, 173–176 MiB with these and a 2 MiB semi-space, wall time within the spread.
 * The threshold was 256 KiB until workers wrote large files themselves; then each blob of
 * about 1 MiB, deciphered and decompressed, was a fresh mapping the kernel faulted in and
 * zeroed: 2.3 s of system time in a 1 GB restore. At 2 MiB it took 1.4–1.6 s, the wall time
 * 4.7–5.2 → 4.3–4.5 s, the peak 3–4 MiB more.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
	MALLOC_ARENA_MAX: "1",
	MALLOC_MMAP_THRESHOLD_: "2097152",
});

/**
 * Collections run on the thread that needs them, not on V8's helper threads: on two cores
 * already busy with the main thread and two workers, the helpers only take turns with them.
 * A mixed restore (scale 0.25) into tmpfs, with the compile budget below in both: 1.36–1.43 s
 * at 1.64–1.75 s of CPU before, 1.27–1.38 s at 1.57–1.71 s with it, the same peak. A
 * command-line flag only: set once V8 runs, it crashes the process at its first collection.
 *
 * The young generation is not set here: `--max-semi-space-size` would be every thread's and
 * would override each worker's own limit (`WORKER_RESOURCE_LIMITS` in the core). The main
 * thread's is capped as a backup's is (young-generation.ts).
 */
export const NODE_FLAGS: readonly string[] = Object.freeze(["--single-threaded-gc"]);

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

/** Global options that take a value: the word after them is not the command. */
const VALUED = new Set(["--config", "--now", "--password-file"]);
/** Settings the user gave glibc themselves: left as they are, and no second start. */
const USER_SET = ["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"];

/** The command word of `argv`: the first word that is neither an option nor an option's value. */
export function commandOf(argv: readonly string[]): string | undefined {
	for (let i = 0; i < argv.length; i++) {
		const word = argv[i] as string;
		if (VALUED.has(word)) i++;
		else if (!word.startsWith("-")) return word;
	}
	return undefined;
}

/** Whether this process should hand the command to a Node started with the memory settings. */
export function wantsTuning(argv: readonly string[], env: NodeJS.ProcessEnv, glibc: () => boolean): boolean {
	if (env[TUNED_MARK] !== undefined || USER_SET.some((name) => env[name] !== undefined)) return false;
	const command = commandOf(argv);
	// Asked last: finding the C library takes a few milliseconds, which other commands never pay.
	return (command === "restore" || (command === "check" && argv.includes("--read-data"))) && glibc();
}

/** True where the C library is glibc (musl and other systems have no such arenas). */
export function isGlibc(): boolean {
	if (process.platform !== "linux") return false;
	const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
	return typeof report?.header?.glibcVersionRuntime === "string";
}

/** How the second Node ended: its exit code, or the signal that ended it. */
export interface Ended {
	readonly code: number | null;
	readonly signal: NodeJS.Signals | null;
}

const FORWARDED: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Node's exit code for an option it does not know: no command of holdfast's ends with it. */
const BAD_OPTION = 9;

/**
 * Runs `script` with `argv` in a Node started with `flags` and `env` added, sharing this
 * process's stdio; signals sent to this process go on to it. Resolves once it has ended, or
 * to undefined when it could not start, or refused a flag (a Node whose V8 no longer has
 * one): the caller then runs the command itself, as a restore without the settings is
 * still a restore.
 */
export async function relaunch(
	script: string,
	argv: readonly string[],
	env: Readonly<Record<string, string>> = MALLOC_ENV,
	flags: readonly string[] = NODE_FLAGS,
): Promise<Ended | undefined> {
	// Loaded only to relaunch: every other command's start would pay for node:child_process.
	const { spawn } = await import("node:child_process");
	return new Promise((resolve) => {
		// The user's own Node options come after ours: theirs win.
		const child = spawn(process.execPath, [...flags, ...process.execArgv, script, ...argv], {
			stdio: "inherit",
			env: { ...process.env, ...env, [TUNED_MARK]: "1" },
		});
		const forward = (signal: NodeJS.Signals) => {
			child.kill(signal);
		};
		for (const signal of FORWARDED) process.on(signal, forward);
		const done = (ended: Ended | undefined) => {
			for (const signal of FORWARDED) process.off(signal, forward);
			resolve(ended);
		};
		child.once("error", () => done(undefined));
		child.once("exit", (code, signal) => done(code === BAD_OPTION ? undefined : { code, signal }));
	});
}

/** In the second Node, before the command: the heap's growth by its size, and an end with the first Node. */
export function startTuned(): void {
	growHeapBySize();
	endWithParent();
}

/**
 * In the second Node: ends it when the first is gone (killed with SIGKILL, which cannot be
 * passed on), as the user meant for the command. Checked once a second, never keeping it alive.
 */
export function endWithParent(parent = process.ppid, every = 1000): () => void {
	const timer = setInterval(() => {
		if (process.ppid !== parent) process.kill(process.pid, "SIGKILL");
	}, every);
	timer.unref();
	return () => clearInterval(timer);
}

/** Ends this process the way the second Node ended: by the same signal, or with its code. */
export function endAs(ended: Ended): void {
	if (ended.signal) {
		process.kill(process.pid, ended.signal);
		return;
	}
	process.exitCode = ended.code ?? 1;
}
