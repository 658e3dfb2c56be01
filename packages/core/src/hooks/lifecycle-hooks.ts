import tapable from "tapable";
import type { GroomCandidate, GroomPlan } from "../engine/groom-types.js";
import type {
	BackupSummary,
	EntryChange,
	LockPlan,
	RunContext,
	RunPlan,
	RunWarning,
	ScannedEntry,
	UploadedObject,
} from "../engine/run-types.js";
import type { SourceEntry } from "../source/source.js";

const { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncBailHook, SyncHook, SyncWaterfallHook } = tapable;

export type EntryStream = AsyncIterable<SourceEntry>;

/**
 * Stages order taps on one hook independently of the order plugins are listed in the config.
 * Lower runs first; taps of equal stage run in registration order. Tap with
 * `hook.tap({ name: context.name, stage: STAGE.RETENTION }, fn)`.
 */
export const STAGE = Object.freeze({
	/** Filters and overrides that must see the raw stream or the core's default value first. */
	EARLY: -100,
	/** Ordinary taps (what a plain `tap("name", fn)` gets). */
	DEFAULT: 0,
	/** Retention planning (re-include, extend) after ordinary changes are decided. */
	RETENTION: 100,
	/** Observers that want the final value (reports, audit logs). */
	REPORT: 1000,
});

/**
 * Every hook of holdfast, declared in one place and in the order a backup meets them (HOOKS.md
 * lists them in this order, and a test keeps the two in step). Hook type follows meaning:
 * per-entry notifications are sync (millions of calls, no awaiting); a value refined tap after
 * tap is a waterfall; ordered side effects are async series; a veto is a bail. Fan-out
 * concurrency lives in the engine, never in a parallel hook. Whatever a tap throws reaches the
 * user as `[plugin] hook: message`.
 *
 * "Runs" below are what `Engine.run` wraps: `backup`, `plan` (a dry backup: `holdfast plan`),
 * `restore`, `check`, `groom` and `repair`. `init` and the reading commands (`snapshots`, `ls`,
 * `status`) are not runs: no run-level hook fires for them.
 */
export function createLifecycleHooks() {
	return Object.freeze({
		/**
		 * `validate(context)` — first thing of every run, after the repository is opened (and,
		 * for a backup, the destination's preflight passed), before anything is written.
		 * A tap vetoes the run by throwing: the run stops before `beforeRun`, `failed` sees the
		 * error, and the user reads `[plugin] validate: message`. Returns nothing.
		 * AsyncSeriesHook: every check runs in stage order and may await (a file, a clock, a
		 * service); a thrown error names its plugin, which a bail value could not.
		 * Stages: `EARLY` for cheap checks, `DEFAULT`.
		 */
		validate: new AsyncSeriesHook<[RunContext]>(["context"]),
		/**
		 * `beforeRun(context)` — every run, once every `validate` tap passed, before the run's
		 * body: open what the run needs (a connection, a database snapshot). Throwing fails the
		 * run. Returns nothing. AsyncSeriesHook: ordered side effects that may await.
		 * Stages: `DEFAULT`; `REPORT` for observers.
		 */
		beforeRun: new AsyncSeriesHook<[RunContext]>(["context"]),
		/**
		 * `plan(plan, context)` — backup and plan runs, after `beforeRun`, before any source is
		 * scanned (the plan says which stored copies may still be reused). Also called on its own,
		 * with `context.kind === "plan"` and no other hook around it, when `check`, `status`, the
		 * daemon or `plan --forecast` ask when a set's next run is: taps must not have side effects.
		 * Gets the core's default (new objects locked until now + the days of the snapshot's
		 * retention tier, strategy by the destination's capabilities); returns the plan, changed
		 * or replaced. The core refuses a plan that moves `protectUntil` earlier than its default,
		 * whose lock ends before `protectUntil`, or that locks in governance mode where the config
		 * asks for compliance. AsyncSeriesWaterfallHook: one value refined tap after tap. Stages:
		 * `EARLY` overrides of the default, `DEFAULT`, `RETENTION` (the look-ahead planner fills
		 * `nextRun`, `horizon`, `reuseMinLock`), `REPORT` sees the final plan.
		 */
		plan: new AsyncSeriesWaterfallHook<[RunPlan, RunContext]>(["plan", "context"]),
		/**
		 * `scan(entries, context)` — backup and plan runs, once per source of the set (in config
		 * order), before that source is walked. Gets the source's entry stream; returns a stream
		 * (usually a wrapper: filter, add, annotate). The stream must stay lazy (never gather
		 * every entry: memory is bounded) and keep the source's depth-first, name-sorted order.
		 * AsyncSeriesWaterfallHook: each tap wraps the stream the previous one returned.
		 * Stages: `EARLY` for filters that must see the raw stream, `DEFAULT`.
		 */
		scan: new AsyncSeriesWaterfallHook<[EntryStream, RunContext]>(["entries", "context"]),
		/**
		 * `didScanEntry(scanned)` — backup and plan runs, for every entry the walk takes (after
		 * the `scan` taps), in walk order, before a file's content is read. For observers
		 * (progress, counts); the return value is ignored. SyncHook: called per entry, so it
		 * must be cheap and cannot await. Stages: any; `REPORT` by convention.
		 */
		didScanEntry: new SyncHook<[ScannedEntry]>(["scanned"]),
		/**
		 * `diff(change, scanned, context)` — backup and plan runs, for every regular file, after
		 * the core compared it with the catalog's record of the last run and before the file is
		 * read. Gets the verdict (`new`, `changed`, or `unchanged` with the blobs remembered);
		 * returns a verdict: a tap may turn `unchanged` into `changed` or `reincluded` to have the
		 * file read and stored again (an `unchanged` without `knownBlobs` is read too); one that
		 * calls a new or changed file unchanged with blobs fails the run. After the taps, the
		 * core re-includes an unchanged file whose stored copy is locked for less than the
		 * plan's `reuseMinLock`. SyncWaterfallHook: a per-entry value refined without I/O.
		 * Stages: `DEFAULT`; `REPORT` to see the taps' verdict.
		 */
		diff: new SyncWaterfallHook<[EntryChange, ScannedEntry, RunContext]>(["change", "scanned", "context"]),
		/**
		 * `warning(warning, context)` — backup and plan runs, whenever an entry is skipped
		 * (vanished, unreadable, refused by its source), a file is stored flagged because it
		 * kept changing while read, or a blob an earlier snapshot needs cannot be read. The
		 * warning is already logged and counted (a skip makes the run partial, exit 3); the
		 * return value is ignored. SyncHook: per entry, cannot slow the walk.
		 * Stages: `REPORT` by convention.
		 */
		warning: new SyncHook<[RunWarning, RunContext]>(["warning", "context"]),
		/**
		 * `lock(lockPlan, context)` — backup and plan runs, once every source is walked and every
		 * tree saved, before the last packs are written. Gets an empty lock plan whose read-only
		 * `needs` say what each snapshot in its window needs and until when (the run's plan is
		 * `context.plan`); returns the plan
		 * with `extensions` (lock extensions), `renewals` (blobs copied into new packs),
		 * `relist` and `renewMetadata`. The core then writes the renewals and metadata copies
		 * into this run's objects, and after `upload` applies the extensions, dropping any that
		 * would not lengthen a lock. In a plan run nothing is applied: the result lists what
		 * would be. AsyncSeriesWaterfallHook: one plan refined tap after tap.
		 * Stages: `DEFAULT`, `RETENTION` (the look-ahead planner), `REPORT`.
		 */
		lock: new AsyncSeriesWaterfallHook<[LockPlan, RunContext]>(["lockPlan", "context"]),
		/**
		 * `didUploadObject(object, setName)` — for every object the core writes, once the
		 * destination acknowledged it (locked already): packs (data, trees, renewed copies),
		 * index objects, snapshots, and config and key file copies. Fires in backup runs, in
		 * groom runs (the index object that records deletions), in repair runs (the rebuilt
		 * index) and during `init` (config, key file and first index, with no run around them);
		 * never in plan runs or dry runs, which write nothing. A small backup writes its packs
		 * once `lock` has decided the renewals; a large one uploads packs as they fill during the
		 * walk, so calls interleave with `diff`; the last index and the snapshot come after
		 * `upload`. The return value is ignored; a throw fails the run (the object itself stays:
		 * it is locked). SyncHook: a notification per object that must not hold up uploads.
		 * Stages: `REPORT` by convention.
		 */
		didUploadObject: new SyncHook<[UploadedObject, string]>(["object", "setName"]),
		/**
		 * `upload(summary, context)` — backup runs (never plan runs), once every pack is written (data, trees, renewed copies) and before lock extensions
		 * are applied and the run's last index object and its snapshot are written. Gets the
		 * summary so far (files, bytes read and uploaded; object counts are final only in the
		 * run's result). Returns nothing; a throw fails the run before the snapshot exists, and
		 * the next run reuses what was written. AsyncSeriesHook: ordered side effects that may
		 * await (flush a log, verify what was written). Stages: `DEFAULT`, `REPORT`.
		 */
		upload: new AsyncSeriesHook<[BackupSummary, RunContext]>(["summary", "context"]),
		/**
		 * `groom(groomPlan, context)` — groom runs (`holdfast groom`, its `--dry-run`, and the
		 * groom after a backup with `groom.afterBackup`), after `beforeRun`. Gets an empty plan;
		 * returns the snapshots to forget and keep, the objects to delete and those held. The
		 * core then asks `keep` about every deletion and deletes nothing still locked, whatever
		 * the plan says. AsyncSeriesWaterfallHook: one plan refined tap after tap.
		 * Stages: `DEFAULT` (the groom plugin), `REPORT`.
		 */
		groom: new AsyncSeriesWaterfallHook<[GroomPlan, RunContext]>(["groomPlan", "context"]),
		/**
		 * `keep(candidate, context)` — groom runs (dry runs too), once per object the groom plan
		 * would delete, before the core asks the store for its locks. Return a reason to keep the
		 * object (it is held, reason `veto`, with that text) or `undefined` to let it go.
		 * SyncBailHook: a veto on a destructive step; the first reason wins and later taps are
		 * not asked. Stages: `EARLY` for rules that must win, `DEFAULT`.
		 */
		keep: new SyncBailHook<[GroomCandidate, RunContext], string | undefined>(["candidate", "context"]),
		/**
		 * `afterRun(context, result)` — every run whose body succeeded. `result` is the run's
		 * result by `context.kind`: `BackupResult` (backup, plan), `RestoreSummary`,
		 * `CheckReport`, `GroomResult`, `IndexRepairResult`. Returns nothing; a throw turns the
		 * run into a failure (`failed` fires). AsyncSeriesHook: ordered side effects that may
		 * await. Stages: `REPORT` for reports and audit logs.
		 */
		afterRun: new AsyncSeriesHook<[RunContext, unknown]>(["context", "result"]),
		/**
		 * `failed(context, error)` — every run in which `validate`, `beforeRun`, the body or
		 * `afterRun` threw, before the error reaches the user. Returns nothing; a throw here is
		 * swallowed (and skips the later `failed` taps) so the run's own error is what the user
		 * sees. AsyncSeriesHook: cleanup and reports that may await. Stages: `REPORT`.
		 */
		failed: new AsyncSeriesHook<[RunContext, Error]>(["context", "error"]),
	});
}

export type LifecycleHooks = ReturnType<typeof createLifecycleHooks>;
export type HookName = keyof LifecycleHooks;

/** What an interceptor may watch of a call; `register` alone sees taps as they are added, not calls. */
const WATCHES_CALLS = ["call", "tap", "loop", "done", "result", "error"] as const;

/**
 * Whether calling `hook` reaches anyone: a tap, or an interceptor that watches calls (tapable
 * runs `call`, `done`, `result` and `error` interceptors even for a hook without taps). The
 * per-entry hooks are called only then, so a walk nobody watches builds no arguments for them.
 */
export function isListened(hook: { readonly taps: readonly unknown[] }): boolean {
	const { interceptors } = hook as unknown as { interceptors?: readonly Record<string, unknown>[] };
	return hook.taps.length > 0 || (interceptors?.some((i) => WATCHES_CALLS.some((kind) => i[kind] !== undefined)) ?? false);
}
