import { hostname } from "node:os";
import { basename } from "node:path";
import type { Catalog } from "../catalog/catalog.js";
import type { LifecycleHooks } from "../hooks/lifecycle-hooks.js";
import { Bounded } from "../host/bounded.js";
import { HoldfastError } from "../host/errors.js";
import type { SnapshotRef } from "../repository/snapshot.js";
import { encodeName, type TreeNode } from "../repository/tree.js";
import { displayPath, type Source, type SourceEntry } from "../source/source.js";
import { type FileState, fileState, fileStateKey, readFileState, sameFile } from "./file-state.js";
import type { GroomResult } from "./groom-step.js";
import { applyLockPlan } from "./lock-step.js";
import { protectionNeeds } from "./protection-needs.js";
import { applyRenewals } from "./renewal-step.js";
import type { BackupSummary, EntryChange, LockExtension, RunContext, RunPlan, RunWarning } from "./run-types.js";

export interface BackupResult {
	/** Absent for a dry run. */
	snapshot?: SnapshotRef;
	/** Lock extensions applied (or, in a dry run, that would be). */
	extensions: LockExtension[];
	/** When the set grooms after each backup. */
	groom?: GroomResult;
	summary: BackupSummary;
	plan: RunPlan;
	warnings: RunWarning[];
	partial: boolean;
}

interface Frame {
	/** latin1 of the directory's relPath; null for the snapshot's top. */
	readonly path: string | null;
	readonly node: TreeNode | undefined;
	readonly nodes: TreeNode[];
	readonly pending: Promise<void>[];
}

/** Re-reads a file this many times when it changes while read, then stores it flagged. */
const MAX_READ_ATTEMPTS = 3;

export interface BackupDeps {
	readonly hooks: LifecycleHooks;
	readonly sources: readonly Source[];
	readonly catalog: Catalog;
	readonly plan: RunPlan;
	/** Needed to write a fresh key file when the old ones' locks run short. */
	readonly password: string;
	/** Every snapshot in the repository: those still in their window are kept protected by this run. */
	readonly snapshots: readonly SnapshotRef[];
	/** Files processed at once (chunks of each are pipelined too). */
	readonly fileConcurrency?: number;
}

/** scan → diff → (plan already made) → upload → lock → snapshot, streaming. */
export async function runBackup(context: RunContext, deps: BackupDeps): Promise<BackupResult> {
	const { repository, signal } = context;
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
	const reuseMinLock = plan.reuseMinLock;
	const files = new Bounded(deps.fileConcurrency ?? 8);
	let stateWrites: [string, FileState][] = [];
	/**
	 * File states go to the catalog in batches during the run, so memory does not grow with
	 * the number of files. Safe before the snapshot exists: a state whose blobs are not in
	 * the index when next read (a run that died) counts as changed.
	 */
	const flushStates = async () => {
		const batch = stateWrites;
		stateWrites = [];
		if (batch.length > 0) await catalog.setMany(batch.map(([key, value]) => ({ key, value })));
	};
	/** Blobs the new snapshot takes from earlier runs: the lock step keeps them protected for its window. */
	const reused = new Set<string>();
	const dryRun = context.dryRun;
	const noteReused = (ids: readonly string[]) => {
		for (const id of ids) reused.add(id);
	};
	if (!dryRun) repository.beginRun(plan.lock);

	const top: Frame = { path: null, node: undefined, nodes: [], pending: [] };
	const stack: Frame[] = [top];
	const usedNames = new Set<string>();
	const paths: string[] = [];
	let totalBytes = 0;

	const closeFrame = async () => {
		const frame = stack.pop() as Frame;
		await Promise.all(frame.pending);
		if (dryRun) return;
		const { id, added } = await repository.saveTree({ nodes: frame.nodes }, reuseMinLock);
		if (!added) noteReused([id]);
		if (frame.node) frame.node.subtree = id;
	};

	const storeContent = async (entry: SourceEntry, node: TreeNode) => {
		for (let attempt = 1; ; attempt++) {
			const ids: Promise<string>[] = [];
			const inflight = new Bounded(8);
			let bytes = 0;
			for await (const chunk of repository.chunker.chunks((entry.read as () => AsyncIterable<Uint8Array>)())) {
				if (signal.aborted) throw new HoldfastError("ABORTED", "backup aborted");
				bytes += chunk.length;
				ids.push(
					(
						await inflight.add(async () => {
							const saved = await repository.saveBlob("data", chunk, reuseMinLock);
							if (saved.added) {
								summary.blobs.new++;
								summary.bytes.added += chunk.length;
							} else {
								summary.blobs.reused++;
								noteReused([saved.id]);
							}
							return saved.id;
						})
					).done,
				);
			}
			await inflight.drain();
			node.content = await Promise.all(ids);
			summary.bytes.read += bytes;
			node.size = bytes;
			if (!entry.unchangedSinceScan || (await entry.unchangedSinceScan())) return true;
			if (attempt >= MAX_READ_ATTEMPTS) {
				node.changing = true;
				warn({ path: displayPath(entry), reason: `kept changing while read (${attempt} tries); stored as last read` });
				return false;
			}
		}
	};

	const handleFile = async (entry: SourceEntry, node: TreeNode, frame: Frame, stateKey: string, change: EntryChange) => {
		totalBytes += entry.size;
		if (change.kind === "unchanged" && change.knownBlobs) {
			node.content = [...change.knownBlobs];
			noteReused(change.knownBlobs);
			summary.files.unchanged++;
			return;
		}
		if (dryRun) {
			// A plan reads no content: what would be read is what would be uploaded, at most.
			summary.files[change.kind]++;
			summary.bytes.read += entry.size;
			return;
		}
		try {
			const stable = await storeContent(entry, node);
			summary.files[change.kind]++;
			if (stable) stateWrites.push([stateKey, fileState(entry, node.content ?? [])]);
		} catch (error) {
			if (error instanceof HoldfastError) throw error;
			// Vanished or unreadable between listing and reading: a warning, not an abort.
			const code = (error as NodeJS.ErrnoException).code;
			if (code === undefined) throw error;
			frame.nodes.splice(frame.nodes.indexOf(node), 1);
			summary.files.skipped++;
			warn({ path: displayPath(entry), reason: `skipped: ${(error as Error).message}` });
		}
	};

	const diffEntry = async (entry: SourceEntry, stateKey: string): Promise<EntryChange> => {
		const state = await readFileState(catalog, stateKey);
		let change: EntryChange = { kind: state ? "changed" : "new" };
		if (sameFile(state, entry)) {
			const missing = state.b.find((id) => !repository.index.blobs.has(id));
			if (missing === undefined) change = { kind: "unchanged", knownBlobs: state.b };
		}
		change = hooks.diff.call(change, { entry, path: displayPath(entry) }, context);
		if (change.kind === "unchanged" && reuseMinLock && change.knownBlobs) {
			const short = change.knownBlobs.find((id) => {
				const packKey = repository.index.blobs.get(id)?.packKey;
				return (repository.index.lockUntil(packKey ?? "")?.getTime() ?? 0) < reuseMinLock.getTime();
			});
			if (short !== undefined) {
				const packKey = repository.index.blobs.get(short)?.packKey ?? "";
				const until = repository.index.lockUntil(packKey)?.toISOString().slice(0, 10) ?? "?";
				change = {
					kind: "reincluded",
					reason: `lock of ${packKey.slice(0, 16)}… ends ${until}, before ${reuseMinLock.toISOString().slice(0, 10)}`,
				};
				plan.notes.push(`${displayPath(entry)}: ${change.reason}`);
			}
		}
		return change;
	};

	for (const source of deps.sources) {
		const entries = await hooks.scan.promise(
			source.scan({
				signal,
				onSkip: (w) => {
					summary.files.skipped++;
					warn(w);
				},
			}),
			context,
		);
		for await (const entry of entries) {
			if (signal.aborted) throw new HoldfastError("ABORTED", "backup aborted");
			const key = entry.relPath.toString("latin1");
			const slash = key.lastIndexOf("/");
			const isRoot = entry.relPath.length === 0;
			const parent = isRoot ? null : slash < 0 ? "" : key.slice(0, slash);
			while ((stack.at(-1) as Frame).path !== parent && stack.length > 1) await closeFrame();
			const frame = stack.at(-1) as Frame;
			if (!isRoot && frame.path !== parent) {
				throw new HoldfastError("PLUGIN_FAILED", `source emitted ${displayPath(entry)} outside depth-first order`);
			}
			const name = isRoot ? uniqueName(basename(entry.root) || "root", usedNames) : encodeName(entry.relPath.subarray(slash + 1));
			if (isRoot) paths.push(entry.root);
			const node = toNode(name, entry);
			frame.nodes.push(node);
			hooks.didScanEntry.call({ entry, path: displayPath(entry) });
			if (entry.type === "dir") {
				summary.dirs++;
				stack.push({ path: isRoot ? "" : key, node, nodes: [], pending: [] });
			} else if (entry.type === "file") {
				const stateKey = fileStateKey(repository.id, context.setName, entry);
				const change = await diffEntry(entry, stateKey);
				frame.pending.push((await files.add(() => handleFile(entry, node, frame, stateKey, change))).done);
				if (stateWrites.length >= 2000) await flushStates();
			}
		}
		while (stack.length > 1) await closeFrame();
	}
	await files.drain();
	let root: { id: string; added: boolean } | undefined;
	if (!dryRun) {
		root = await repository.saveTree({ nodes: top.nodes }, reuseMinLock);
		if (!root.added) noteReused([root.id]);
	}
	const needs = await protectionNeeds(repository, deps.snapshots, context.startedAt, {
		blobs: reused,
		protectUntil: plan.protectUntil,
	});
	const lockPlan = await hooks.lock.promise({ extensions: [], renewals: [], relist: [], renewMetadata: false, needs }, context);
	const renewed = await applyRenewals(repository, lockPlan.renewals, context);
	summary.bytes.renewed = renewed.bytes;
	summary.objects.renewedBlobs = renewed.blobs;
	for (const id of renewed.unreadable)
		warn({ path: `blob ${id.slice(0, 16)}`, reason: "unreadable; an earlier snapshot that needs it is damaged" });
	if (dryRun) {
		const wanted = await applyLockPlan(repository, lockPlan, context);
		summary.objects.extended = wanted.length;
		return { summary, plan, warnings, partial: summary.files.skipped > 0, extensions: wanted };
	}
	if (lockPlan.renewMetadata) await repository.writeMetadataCopies(deps.password);
	repository.relistPacks(lockPlan.relist);
	await repository.flushPacks();

	summary.bytes.uploaded = repository.stats.bytesUploaded;
	await hooks.upload.promise(summary, context);

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

	const partial = summary.files.skipped > 0;
	const snapshot = await repository.saveSnapshot({
		v: 1,
		set: context.setName,
		host: hostname(),
		time: context.startedAt.toISOString(),
		paths,
		tree: (root as { id: string }).id,
		tags: context.set.tags ?? [],
		retention: { days: context.set.retention.days, mode: context.set.retention.mode },
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
	await flushStates();
	return { snapshot, summary, plan, warnings, partial, extensions: applied };
}

function toNode(name: string, entry: SourceEntry): TreeNode {
	const node: TreeNode = {
		name,
		type: entry.type,
		mode: entry.mode,
		uid: entry.uid,
		gid: entry.gid,
		size: entry.type === "file" ? entry.size : 0,
		mtime: entry.mtimeNs.toString(),
		ctime: entry.ctimeNs.toString(),
		inode: entry.inode.toString(),
		device: entry.device.toString(),
	};
	if (entry.linkTarget) node.target = encodeName(entry.linkTarget);
	return node;
}

function uniqueName(name: string, used: Set<string>): string {
	let candidate = name;
	for (let n = 2; used.has(candidate); n++) candidate = `${name}-${n}`;
	used.add(candidate);
	return candidate;
}
