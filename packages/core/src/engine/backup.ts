import type { Catalog } from "../catalog/catalog.js";
import { CatalogCache } from "../catalog/catalog-cache.js";
import type { LifecycleHooks } from "../hooks/lifecycle-hooks.js";
import { describeError } from "../host/errors.js";
import { zstdUnavailable } from "../repository/compression.js";
import type { Repository } from "../repository/repository.js";
import type { SnapshotRef } from "../repository/snapshot.js";
import type { Source } from "../source/source.js";
import { BlobSaver } from "./backup/blob-saver.js";
import { ChangeDetector } from "./backup/change-detector.js";
import { FileSaver } from "./backup/file-saver.js";
import { FilesAhead } from "./backup/files-ahead.js";
import { FolderStateStore } from "./backup/folder-state-store.js";
import { rescueFromGrooming } from "./backup/groom-guard.js";
import { ParentTrees } from "./backup/parent-trees.js";
import { yieldToReads } from "./backup/read-pace.js";
import { TreeCacheWriter } from "./backup/tree-cache-writer.js";
import { type SavedTrees, TreeSaver } from "./backup/tree-saver.js";
import type { GroomResult } from "./groom-step.js";
import { applyLockPlan } from "./lock-step.js";
import { countWindow, protectionNeeds } from "./protection-needs.js";
import { applyRenewals } from "./renewal-step.js";
import type { BackupSummary, LockExtension, RunContext, RunPlan, RunWarning } from "./run-types.js";

export interface BackupResult {
	/** Absent for a dry run, whose snapshot was built and never stored. */
	snapshot?: SnapshotRef;
	/** Lock extensions applied (in a dry run, asked of a destination that sends none). */
	extensions: LockExtension[];
	/** When the set grooms after each backup. */
	groom?: GroomResult;
	summary: BackupSummary;
	plan: RunPlan;
	warnings: RunWarning[];
	partial: boolean;
}

export interface BackupDeps {
	/** The repository itself: the hooks see only `context.repository`, a read-only view of it. */
	readonly repository: Repository;
	readonly hooks: LifecycleHooks;
	readonly sources: readonly Source[];
	readonly catalog: Catalog;
	readonly plan: RunPlan;
	/** Needed to write a fresh key file when the old ones' locks run short. */
	readonly password: string;
	/** Every snapshot in the repository: those still in their window are kept protected by this run. */
	readonly snapshots: readonly SnapshotRef[];
	/** The machine the snapshot is recorded for (config `host`, default the hostname). */
	readonly host: string;
	/** The set's last snapshot from this host: what a folder the catalog has nothing of is compared with. */
	readonly parent?: SnapshotRef;
	/** Every file is read, whatever the catalog and the last snapshot say of it. */
	readonly reread?: boolean;
	/** Files read at once (their chunks are hashed and sealed on the blob pool's threads meanwhile). */
	readonly fileConcurrency?: number;
}

/**
 * scan → diff → (plan already made) → upload → lock → snapshot, streaming. The walk turns
 * entries into trees (TreeSaver), files into blob IDs (FileSaver), and blobs into packs
 * (BlobSaver) — restic's archiver, split the same way.
 */
export async function runBackup(context: RunContext, deps: BackupDeps): Promise<BackupResult> {
	const { repository } = deps;
	const { hooks, catalog, plan } = deps;
	const summary: BackupSummary = {
		files: { new: 0, changed: 0, unchanged: 0, reincluded: 0, skipped: 0 },
		dirs: 0,
		bytes: { read: 0, uploaded: 0, added: 0, renewed: 0 },
		objects: { uploaded: 0, extended: 0, renewedBlobs: 0 },
		blobs: { new: 0, reused: 0 },
	};
	const warnings: RunWarning[] = [];
	const warn = (warning: RunWarning) => {
		warnings.push(warning);
		context.logger.warn(`${warning.path}: ${warning.reason}`);
		hooks.warning.call(warning, context);
	};
	// A dry run takes every step below as a real run does, reading and chunking every file, so
	// its counts are exact: its repository writes through a DryRunDestination, which stores nothing.
	repository.beginRun(plan.lock);
	// Without zstd's module (an install whose build step did not run) data is compressed the slower way: said, not hidden.
	const noZstd = repository.compression ? zstdUnavailable() : undefined;
	if (noZstd !== undefined) {
		context.logger.warn(
			`zstd is not available (${noZstd}): file content is compressed with DEFLATE and Brotli instead, more slowly; reinstall holdfast (npm ci builds it)`,
		);
	}

	const blobs = new BlobSaver(repository, plan.reuseMinLock, summary);
	const fileConcurrency = deps.fileConcurrency ?? 8;
	const files = new FileSaver(repository, blobs, summary, context.signal, fileConcurrency);
	// File states are sealed like every cached value: one that does not verify means "read the file again".
	const cache = repository.cache ?? new CatalogCache(catalog, repository.keys.catalogMac);
	const states = new FolderStateStore(cache);
	const changes = new ChangeDetector(repository, hooks, plan, context, deps.reread);
	const treeCache = new TreeCacheWriter(cache, repository.id);
	// With earlier snapshots to keep locked, the trees they share with this one are counted from this walk, not loaded again.
	// A catalog that does not hold the parent's states (deleted, new here) is filled in from the parent's trees.
	const { parent } = deps;
	const statesComplete = parent !== undefined && (await states.statesOf(repository.id, context.setName)) === parent.id;
	// A scan tap may wrap `read()`: files are then read through it, never by the source's direct read.
	// Taps, not interceptors: the host intercepts every hook to name the plugin whose tap failed.
	const directReads = hooks.scan.taps.length === 0;
	const filesAhead = new FilesAhead(cache, repository.id, context.setName, fileConcurrency);
	if (directReads) filesAhead.start(deps.sources, states, files, deps.reread ?? false);
	const trees = new TreeSaver(repository, context, hooks, summary, changes, files, blobs, states, treeCache, warn, {
		collectBelow: deps.snapshots.length > 0,
		...(parent && !statesComplete ? { parent: new ParentTrees(repository, parent.snapshot) } : {}),
		filesAhead,
	});
	let counting: ReturnType<typeof countWindow>;
	let saved: SavedTrees;
	try {
		for (const source of deps.sources) {
			const entries = await hooks.scan.promise(
				source.scan({
					signal: context.signal,
					onSkip: (w) => {
						summary.files.skipped++;
						warn(w);
					},
				}),
				context,
			);
			await trees.walk(entries, directReads);
		}
		// Every entry is listed; while the last files are read and cut (on the workers), the main
		// thread counts what the earlier snapshots in their window use. It reads only their trees,
		// and lets the reads' callbacks in every few milliseconds: the files come first.
		counting = countWindow(repository, deps.snapshots, context.startedAt, trees.below, yieldToReads());
		counting.catch(() => undefined);
		saved = await trees.finish();
	} catch (error) {
		// A failed run does not wait for whole files read ahead of its walk: they stop at their next chunk.
		await filesAhead.settle(true);
		throw error;
	}
	// Every read begun ahead of the walk has ended, used or not, before the run goes on.
	await filesAhead.settle();
	const { root, paths, totalBytes } = saved;

	// Every tree of the snapshot is saved here; nothing is yet packed for certain or locked.
	await blobs.drain();
	// What every snapshot in its window needs, this one included, and how this run keeps it locked.
	const needs = await protectionNeeds(
		repository,
		deps.snapshots,
		context.startedAt,
		{ blobs: blobs.reused, protectUntil: plan.protectUntil },
		await counting,
	);
	const lockPlan = await hooks.lock.promise({ extensions: [], renewals: [], relist: [], renewMetadata: false, needs }, context);
	const renewed = await applyRenewals(repository, lockPlan.renewals, context);
	summary.bytes.renewed = renewed.bytes;
	summary.objects.renewedBlobs = renewed.blobs;
	for (const id of renewed.unreadable)
		warn({ path: `blob ${id.slice(0, 16)}`, reason: "unreadable; an earlier snapshot that needs it is damaged" });
	if (lockPlan.renewMetadata) await repository.writeMetadataCopies(deps.password);
	repository.relistPacks(lockPlan.relist);
	await repository.flushPacks();

	summary.bytes.uploaded = repository.stats.bytesUploaded;
	// The hook's promise: it fires when packs were really written, never in a plan run.
	if (!context.dryRun) await hooks.upload.promise(summary, context);

	const applied = await applyLockPlan(repository, lockPlan, context);
	summary.objects.extended = applied.length;
	await repository.writeIndex(
		applied.map((e) => ({
			key: e.key,
			mode: e.mode,
			until: e.to.toISOString(),
			...(e.versionId ? { version: e.versionId } : {}),
		})),
	);

	// Last, so that a groom marking a pack this snapshot uses after this point deletes it only a grace later, when the snapshot is listed.
	await rescueFromGrooming(repository, blobs.reused, context.logger);
	const partial = summary.files.skipped > 0;
	const snapshot = await repository.saveSnapshot({
		v: 1,
		set: context.setName,
		host: deps.host,
		time: context.startedAt.toISOString(),
		paths,
		tree: root,
		tags: context.set.tags ?? [],
		// The promise made now is recorded: a later change of the config never shortens it.
		retention: {
			days: context.set.retention.tiers?.find((t) => t.every === plan.tier)?.days ?? context.set.retention.days,
			mode: context.set.retention.mode,
			...(plan.tier ? { tier: plan.tier } : {}),
		},
		protectUntil: plan.protectUntil.toISOString(),
		summary: {
			files: summary.files.new + summary.files.changed + summary.files.unchanged + summary.files.reincluded,
			dirs: summary.dirs,
			bytes: totalBytes,
			skipped: summary.files.skipped,
			partial,
		},
	});
	summary.bytes.uploaded = repository.stats.bytesUploaded;
	summary.objects.uploaded = repository.stats.objects;
	await states.flush();
	// A hint for the next run: the snapshot is saved, and a catalog that cannot take it does not fail the run.
	await filesAhead
		.remember()
		.catch((error: unknown) => context.logger.warn(`catalog: large files not remembered: ${describeError(error)}`));
	await states.setStatesOf(repository.id, context.setName, snapshot.id);
	await states.dropFileLayout(repository.id, context.setName);
	await treeCache.flush();
	return { snapshot, summary, plan, warnings, partial, extensions: applied };
}
