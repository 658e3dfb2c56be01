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
 * Lower runs first; taps of equal stage run in registration order.
 */
export const STAGE = Object.freeze({
	/** Filters that must see the raw stream / plan first. */
	EARLY: -100,
	DEFAULT: 0,
	/** Retention planning (re-include, extend) after ordinary changes are decided. */
	RETENTION: 100,
	/** Observers that want the final value (reports, audit logs). */
	REPORT: 1000,
});

/**
 * Every hook of a run, declared in one place. Per-entry notifications are sync; batch
 * steps are async series or waterfalls; fan-out concurrency lives in the engine.
 */
export function createLifecycleHooks() {
	return Object.freeze({
		/** Veto a run before anything is touched (config sanity, maintenance windows). */
		validate: new AsyncSeriesHook<[RunContext]>(["context"]),
		beforeRun: new AsyncSeriesHook<[RunContext]>(["context"]),
		/** Transforms the entry stream of each source: filter, add, annotate. */
		scan: new AsyncSeriesWaterfallHook<[EntryStream, RunContext]>(["entries", "context"]),
		didScanEntry: new SyncHook<[ScannedEntry]>(["scanned"]),
		/** The verdict for one entry against the catalog: new, changed, unchanged, reincluded. */
		diff: new SyncWaterfallHook<[EntryChange, ScannedEntry, RunContext]>(["change", "scanned", "context"]),
		/** The run's plan, computed before data moves (lock dates, horizon, strategy). */
		plan: new AsyncSeriesWaterfallHook<[RunPlan, RunContext]>(["plan", "context"]),
		didUploadObject: new SyncHook<[UploadedObject]>(["object"]),
		/** After data, trees and index are written, before the snapshot is. */
		upload: new AsyncSeriesHook<[BackupSummary, RunContext]>(["summary", "context"]),
		/** Lock extensions to apply before the snapshot is written. */
		lock: new AsyncSeriesWaterfallHook<[LockPlan, RunContext]>(["lockPlan", "context"]),
		/** Grooming: which snapshots leave and which objects go. */
		groom: new AsyncSeriesWaterfallHook<[GroomPlan, RunContext]>(["groomPlan", "context"]),
		/** Any tap returning a reason keeps the candidate (a veto on a deletion). */
		keep: new SyncBailHook<[GroomCandidate, RunContext], string | undefined>(["candidate", "context"]),
		warning: new SyncHook<[RunWarning, RunContext]>(["warning", "context"]),
		afterRun: new AsyncSeriesHook<[RunContext, unknown]>(["context", "result"]),
		failed: new AsyncSeriesHook<[RunContext, Error]>(["context", "error"]),
	});
}

export type LifecycleHooks = ReturnType<typeof createLifecycleHooks>;
export type HookName = keyof LifecycleHooks;
