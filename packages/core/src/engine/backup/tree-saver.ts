import { basename } from "node:path";
import type { LifecycleHooks } from "../../hooks/lifecycle-hooks.js";
import { HoldfastError } from "../../host/errors.js";
import type { Repository } from "../../repository/repository.js";
import { encodeName, serializeTree, type TreeNode } from "../../repository/tree.js";
import { displayPath, type SourceEntry } from "../../source/source.js";
import { fileStateKey } from "../file-state.js";
import type { BackupSummary, RunContext, RunWarning } from "../run-types.js";
import type { BlobSaver } from "./blob-saver.js";
import type { ChangeDetector } from "./change-detector.js";
import type { FileSaver } from "./file-saver.js";
import type { FileStateWriter } from "./file-state-writer.js";
import type { TreeCacheWriter } from "./tree-cache-writer.js";

/** Entries taken from the source at once, whose file states are looked up together. */
const LOOK_AHEAD = 256;
/** Directories whose tree is still to be saved (waiting for their files) before the walk waits. */
const OPEN_TREES = 256;

interface Frame {
	/** latin1 of the directory's relPath; null for the snapshot's top. */
	readonly path: string | null;
	readonly node: TreeNode | undefined;
	readonly nodes: TreeNode[];
	readonly pending: Promise<void>[];
}

export interface SavedTrees {
	/** The root tree's ID. */
	readonly root: string;
	/** The source roots, in order. */
	readonly paths: string[];
	/** Bytes of every file in the snapshot, read or not. */
	readonly totalBytes: number;
}

/**
 * Turns the sources' depth-first entry streams into trees: a directory's tree is saved once
 * its files have their blob IDs, while the walk goes on — the walk waits only when too many
 * trees (or bytes, in the file saver) are in flight.
 */
export class TreeSaver {
	readonly #top: Frame = { path: null, node: undefined, nodes: [], pending: [] };
	readonly #stack: Frame[] = [this.#top];
	readonly #usedNames = new Set<string>();
	readonly #paths: string[] = [];
	readonly #openTrees = new Set<Promise<void>>();
	#totalBytes = 0;
	#failure: unknown;

	constructor(
		private readonly repository: Repository,
		private readonly context: RunContext,
		private readonly hooks: LifecycleHooks,
		private readonly summary: BackupSummary,
		private readonly changes: ChangeDetector,
		private readonly files: FileSaver,
		private readonly blobs: BlobSaver,
		private readonly states: FileStateWriter,
		private readonly treeCache: TreeCacheWriter,
		private readonly warn: (warning: RunWarning) => void,
	) {}

	/** Adds one source's entries under the snapshot's top. */
	async walk(entries: AsyncIterable<SourceEntry>): Promise<void> {
		const iterator = entries[Symbol.asyncIterator]();
		try {
			for (;;) {
				const batch = await this.#nextBatch(iterator);
				if (batch.length === 0) break;
				for (const entry of batch) await this.#entry(entry);
			}
		} finally {
			await iterator.return?.();
		}
		while (this.#stack.length > 1) await this.#closeFrame();
	}

	/**
	 * The next entries as the source gives them, a batch at a time, with the batch's file
	 * states asked of the catalog at once: one call per batch rather than per file.
	 */
	async #nextBatch(iterator: AsyncIterator<SourceEntry>): Promise<SourceEntry[]> {
		const batch: SourceEntry[] = [];
		while (batch.length < LOOK_AHEAD) {
			const next = await iterator.next();
			if (next.done) break;
			batch.push(next.value);
		}
		const files = batch.filter((entry) => entry.type === "file");
		if (files.length > 1) {
			await this.changes.prefetch(files.map((entry) => fileStateKey(this.repository.id, this.context.setName, entry)));
		}
		return batch;
	}

	async #entry(entry: SourceEntry): Promise<void> {
		if (this.context.signal.aborted) throw new HoldfastError("ABORTED", "backup aborted");
		if (this.#failure !== undefined) throw this.#failure;
		const key = entry.relPath.toString("latin1");
		const slash = key.lastIndexOf("/");
		const isRoot = entry.relPath.length === 0;
		const parent = isRoot ? null : slash < 0 ? "" : key.slice(0, slash);
		while ((this.#stack.at(-1) as Frame).path !== parent && this.#stack.length > 1) await this.#closeFrame();
		const frame = this.#stack.at(-1) as Frame;
		if (!isRoot && frame.path !== parent) {
			throw new HoldfastError("PLUGIN_FAILED", `source emitted ${displayPath(entry)} outside depth-first order`);
		}
		const name = isRoot
			? uniqueName(basename(entry.root) || "root", this.#usedNames)
			: encodeName(entry.relPath.subarray(slash + 1));
		if (isRoot) this.#paths.push(entry.root);
		const node = toNode(name, entry);
		frame.nodes.push(node);
		this.hooks.didScanEntry.call({ entry, path: displayPath(entry) });
		if (entry.type === "dir") {
			this.summary.dirs++;
			this.#stack.push({ path: isRoot ? "" : key, node, nodes: [], pending: [] });
		} else if (entry.type === "file") {
			await this.#file(entry, node, frame);
		}
	}

	/** Every source walked: waits for the last trees and saves the root. */
	async finish(): Promise<SavedTrees> {
		this.files.close();
		await Promise.all(this.#top.pending);
		while (this.#openTrees.size > 0) await Promise.all([...this.#openTrees]);
		if (this.#failure !== undefined) throw this.#failure;
		return { paths: this.#paths, totalBytes: this.#totalBytes, root: await this.#saveTree(this.#top.nodes) };
	}

	/** Stores a directory's tree; one stored now is also cached, for the next run's walk of this snapshot. */
	async #saveTree(nodes: TreeNode[]): Promise<string> {
		const bytes = serializeTree({ nodes });
		const { id, added } = await this.blobs.saveWhole("tree", bytes);
		if (added) await this.treeCache.remember(id, bytes.toString("utf8"));
		return id;
	}

	async #file(entry: SourceEntry, node: TreeNode, frame: Frame): Promise<void> {
		const { repository } = this;
		const { setName } = this.context;
		const stateKey = fileStateKey(repository.id, setName, entry);
		const change = await this.changes.diff(entry, stateKey);
		this.#totalBytes += entry.size;
		if (change.kind === "unchanged" && change.knownBlobs) {
			node.content = [...change.knownBlobs];
			this.blobs.noteReused(change.knownBlobs);
			this.summary.files.unchanged++;
			return;
		}
		const { done } = await this.files.save(entry);
		const settled = done.then(
			async (stored) => {
				node.content = stored.ids;
				// What was read counts, not what the scan said (a file that grew, a command's output).
				this.#totalBytes += stored.size - node.size;
				node.size = stored.size;
				if (stored.changing) node.changing = true;
				this.summary.files[change.kind]++;
				if (!stored.changing) await this.states.remember(stateKey, entry, stored.ids);
			},
			(error: unknown) => {
				if (error instanceof HoldfastError) throw error;
				// Vanished or unreadable between listing and reading: a warning, not an abort.
				if ((error as NodeJS.ErrnoException).code === undefined) throw error;
				frame.nodes.splice(frame.nodes.indexOf(node), 1);
				this.summary.files.skipped++;
				this.warn({ path: displayPath(entry), reason: `skipped: ${(error as Error).message}` });
			},
		);
		this.#track(settled);
		frame.pending.push(settled);
	}

	/** The walk leaves a directory: its tree is saved once its files (and subtrees) are. */
	async #closeFrame(): Promise<void> {
		const frame = this.#stack.pop() as Frame;
		const parent = this.#stack.at(-1) as Frame;
		// Trees may wait on small files gathered for the workers: the file saver sends them while the walk waits.
		if (this.#openTrees.size >= OPEN_TREES) await this.files.waitFor(Promise.race(this.#openTrees));
		const saved = (async () => {
			await Promise.all(frame.pending);
			const id = await this.#saveTree(frame.nodes);
			if (frame.node) frame.node.subtree = id;
		})();
		this.#track(saved);
		this.#openTrees.add(saved);
		void saved.finally(() => this.#openTrees.delete(saved)).catch(() => undefined);
		parent.pending.push(saved);
	}

	/** The first failure stops the walk at its next entry, and `finish` reports it. */
	#track(task: Promise<void>): void {
		task.catch((error: unknown) => {
			this.#failure ??= error;
		});
	}
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
