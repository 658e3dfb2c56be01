import { basename } from "node:path";
import { isListened, type LifecycleHooks } from "../../hooks/lifecycle-hooks.js";
import { HoldfastError } from "../../host/errors.js";
import type { Repository } from "../../repository/repository.js";
import { encodeName, serializeTree, type TreeNode } from "../../repository/tree.js";
import { displayPath, type SourceEntry } from "../../source/source.js";
import {
	type FileState,
	type FolderStates,
	fileState,
	folderStateKey,
	rootStateKey,
	type ScannedFile,
	stateOf,
} from "../file-state.js";
import type { BackupSummary, ChangeKind, RunContext, RunWarning } from "../run-types.js";
import type { BlobSaver } from "./blob-saver.js";
import type { ChangeDetector } from "./change-detector.js";
import type { FileSaver, StoredFile } from "./file-saver.js";
import type { FilesAhead } from "./files-ahead.js";
import type { FolderStateStore } from "./folder-state-store.js";
import type { ParentTrees } from "./parent-trees.js";
import { yieldToReads } from "./read-pace.js";
import { SavedTreeBlobs, type TreesBelow } from "./saved-tree-blobs.js";
import { type BatchedFile, type BatchedOutcome, CHANGED } from "./small-file-batch.js";
import type { TreeCacheWriter } from "./tree-cache-writer.js";

/** Entries taken from the source at once, whose folders' file states are looked up together. */
const LOOK_AHEAD = 256;
/** Directories whose tree is still to be saved (waiting for their files) before the walk waits. */
const OPEN_TREES = 256;

interface Frame {
	/** latin1 of the directory's relPath; null for the snapshot's top. */
	readonly path: string | null;
	readonly node: TreeNode | undefined;
	readonly nodes: TreeNode[];
	readonly pending: Promise<void>[];
	/** Where the folder's file states are kept, and what the last run left there. */
	readonly stateKey: string;
	known: FolderStates | undefined;
	/** The states this run remembers, by name (latin1 of the name's bytes). */
	readonly states: Record<string, FileState>;
	remembered: number;
	/** Whether `states` differs from `known`: a folder whose files are all unchanged is not written again. */
	changed: boolean;
	/** Small files read straight into a batch for the workers: their IDs are filled in when the folder closes. */
	readonly batched: BatchedNode[];
}

interface BatchedNode {
	/** Kept only until the file is known read: one not read is read again, or skipped, by it. */
	entry: SourceEntry | undefined;
	readonly frame: Frame;
	readonly node: TreeNode & ScannedFile;
	readonly name: string;
	readonly kind: ChangeKind;
	readonly file: BatchedFile;
}

function newFrame(path: string | null, node: TreeNode | undefined, stateKey: string, known: FolderStates | undefined): Frame {
	return {
		path,
		node,
		nodes: [],
		pending: [],
		stateKey,
		known,
		states: Object.create(null),
		remembered: 0,
		changed: false,
		batched: [],
	};
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
	readonly #top: Frame;
	#topKnown = false;
	/** Folders' states looked up ahead of the walk, by key; each is taken once, when the walk enters it. */
	readonly #ahead = new Map<string, FolderStates | undefined>();
	/** Keys of `#ahead` whose states came from the parent snapshot: the catalog is given them this run. */
	readonly #fromParent = new Set<string>();
	readonly #parent: ParentTrees | undefined;
	/** Large files read ahead of the walk; it is told every file it lists. */
	readonly #filesAhead: FilesAhead | undefined;
	readonly #pace = yieldToReads();
	readonly #stack: Frame[];
	readonly #usedNames = new Set<string>();
	readonly #paths: string[] = [];
	readonly #openTrees = new Set<Promise<void>>();
	/** Settles when the next open tree is saved (or fails): what a walk with too many open waits on. */
	#treeSaved: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;
	#totalBytes = 0;
	#directReads = false;
	/** The files of each batch in flight, taken in as soon as it is read: one reaction per batch, not per file. */
	readonly #byBatch = new Map<Promise<BatchedOutcome[]>, BatchedNode[]>();
	/** The trees this run saved, for the count of what earlier snapshots keep locked; kept only when asked for. */
	readonly #below: SavedTreeBlobs | undefined;
	#failure: unknown;

	constructor(
		private readonly repository: Repository,
		private readonly context: RunContext,
		private readonly hooks: LifecycleHooks,
		private readonly summary: BackupSummary,
		private readonly changes: ChangeDetector,
		private readonly files: FileSaver,
		private readonly blobs: BlobSaver,
		private readonly states: FolderStateStore,
		private readonly treeCache: TreeCacheWriter,
		private readonly warn: (warning: RunWarning) => void,
		options: { collectBelow?: boolean; parent?: ParentTrees; filesAhead?: FilesAhead } = {},
	) {
		this.#below = options.collectBelow ? new SavedTreeBlobs() : undefined;
		this.#parent = options.parent;
		this.#filesAhead = options.filesAhead;
		this.#top = newFrame(null, undefined, rootStateKey(repository.id, context.setName), undefined);
		this.#stack = [this.#top];
	}

	/**
	 * Adds one source's entries under the snapshot's top. `directReads` when the entries are
	 * the source's own: a `scan` tap may replace `read()`, and a file is then read through it alone.
	 */
	async walk(entries: AsyncIterable<SourceEntry>, directReads: boolean): Promise<void> {
		this.#directReads = directReads;
		const iterator = entries[Symbol.asyncIterator]();
		try {
			for (;;) {
				const batch = await this.#nextBatch(iterator);
				if (batch.length === 0) break;
				for (const entry of batch) {
					// Most entries are taken on this turn: a promise only where the walk has to wait.
					const waiting = this.#entry(entry);
					if (waiting) await waiting;
					const turn = this.#turn();
					if (turn) await turn;
				}
			}
		} finally {
			await iterator.return?.();
		}
		while (this.#stack.length > 1) await this.#closeFrame();
	}

	/**
	 * The next entries as the source gives them, a batch at a time, with the file states of
	 * the batch's folders asked of the catalog at once: one call per batch, one value per folder.
	 */
	async #nextBatch(iterator: AsyncIterator<SourceEntry>): Promise<SourceEntry[]> {
		// The small files taken so far go to the workers before the walk waits on the source: read
		// while the source lists, not once the batch is full, so each is read soon after it was listed.
		this.files.sendGathered();
		const batch: SourceEntry[] = [];
		while (batch.length < LOOK_AHEAD) {
			const next = await iterator.next();
			if (next.done) break;
			batch.push(next.value);
			const turn = this.#turn();
			if (turn) await turn;
		}
		const keys: string[] = [];
		if (!this.#topKnown) keys.push(this.#top.stateKey);
		const folders = batch.filter((entry) => entry.type === "dir").map((entry) => ({ entry, key: this.#folderKey(entry) }));
		for (const { key } of folders) keys.push(key);
		if (keys.length > 0) {
			const found = await this.states.recall(keys);
			for (let i = 0; i < keys.length; i++) this.#ahead.set(keys[i] as string, found[i]);
		}
		// Folders the catalog has nothing of: as the parent snapshot has them, when it has them.
		const parent = this.#parent;
		if (parent) {
			const missing = folders.filter(({ key }) => this.#ahead.get(key) === undefined);
			const states = await Promise.all(missing.map(({ entry }) => parent.statesFor(entry.root, entry.relPath)));
			missing.forEach(({ key }, i) => {
				if (!states[i]) return;
				this.#ahead.set(key, states[i]);
				this.#fromParent.add(key);
			});
		}
		if (!this.#topKnown) {
			this.#topKnown = true;
			this.#top.known = this.#ahead.get(this.#top.stateKey);
			this.#ahead.delete(this.#top.stateKey);
			// Roots that are files, as the parent snapshot has them: written to the catalog this run.
			if (!this.#top.known && this.#parent) {
				this.#top.known = await this.#parent.rootFileStates();
				if (this.#top.known) this.#top.changed = true;
			}
		}
		return batch;
	}

	/**
	 * A turn of the event loop, every few milliseconds, while files are read ahead: their reads
	 * and cuts go on only in their callbacks, which a walk over cached metadata rarely lets in.
	 */
	#turn(): Promise<void> | undefined {
		return this.#filesAhead?.reading ? this.#pace() : undefined;
	}

	/** Takes one entry; a promise only when the walk has to wait (trees to close, a file's read slot). */
	#entry(entry: SourceEntry): Promise<void> | undefined {
		if (this.context.signal.aborted) throw new HoldfastError("ABORTED", "backup aborted");
		if (this.#failure !== undefined) throw this.#failure;
		const key = entry.relPath.toString("latin1");
		const slash = key.lastIndexOf("/");
		const isRoot = entry.relPath.length === 0;
		const parent = isRoot ? null : slash < 0 ? "" : key.slice(0, slash);
		if ((this.#stack.at(-1) as Frame).path !== parent && this.#stack.length > 1) return this.#leaveFor(entry, parent);
		const frame = this.#stack.at(-1) as Frame;
		if (!isRoot && frame.path !== parent) {
			throw new HoldfastError("PLUGIN_FAILED", `source emitted ${displayPath(entry)} outside depth-first order`);
		}
		const name = isRoot ? rootName(entry.root, this.#usedNames) : encodeName(entry.relPath.subarray(slash + 1));
		if (isRoot) this.#paths.push(entry.root);
		const node = toNode(name, entry);
		frame.nodes.push(node);
		if (isListened(this.hooks.didScanEntry)) this.hooks.didScanEntry.call({ entry, path: displayPath(entry) });
		if (entry.type === "dir") {
			this.summary.dirs++;
			const stateKey = this.#folderKey(entry);
			const known = this.#ahead.get(stateKey);
			this.#ahead.delete(stateKey);
			const frame = newFrame(isRoot ? "" : key, node, stateKey, known);
			// States from the parent snapshot are not the catalog's: written, even if every file is unchanged.
			if (this.#fromParent.delete(stateKey)) frame.changed = true;
			this.#stack.push(frame);
		} else if (entry.type === "file") {
			return this.#file(entry, node, frame, isRoot ? entry.root : key.slice(slash + 1));
		}
		return undefined;
	}

	/** The walk left the folders up to `parent`: their trees are closed, then the entry is taken. */
	async #leaveFor(entry: SourceEntry, parent: string | null): Promise<void> {
		while ((this.#stack.at(-1) as Frame).path !== parent && this.#stack.length > 1) await this.#closeFrame();
		await this.#entry(entry);
	}

	#folderKey(entry: SourceEntry): string {
		return folderStateKey(this.repository.id, this.context.setName, entry.root, entry.relPath);
	}

	/** Every source walked: waits for the last trees and saves the root. */
	async finish(): Promise<SavedTrees> {
		this.files.close();
		await Promise.all(this.#top.pending);
		while (this.#openTrees.size > 0) await Promise.all([...this.#openTrees]);
		if (this.#failure !== undefined) throw this.#failure;
		await this.#settleBatched(this.#top);
		await this.#rememberStates(this.#top);
		return { paths: this.#paths, totalBytes: this.#totalBytes, root: await this.#saveTree(this.#top.nodes) };
	}

	/**
	 * What lies below each tree this run saved (as `collectBelow` asked): the earlier snapshots
	 * that share a tree need not load it again to count what they keep locked.
	 */
	get below(): TreesBelow | undefined {
		return this.#below;
	}

	/** Stores a directory's tree; one stored now is also cached, for the next run's walk of this snapshot. */
	async #saveTree(nodes: TreeNode[]): Promise<string> {
		const bytes = serializeTree({ nodes });
		const { id, added } = await this.blobs.saveWhole("tree", bytes);
		if (added) await this.treeCache.remember(id, bytes);
		this.#below?.note(id, nodes);
		return id;
	}

	/** `name` is the file's key in its folder's states. */
	#file(entry: SourceEntry, node: TreeNode & ScannedFile, frame: Frame, name: string): Promise<void> | undefined {
		const known = stateOf(frame.known, name);
		const change = this.changes.diff(entry, node, known);
		this.#totalBytes += entry.size;
		this.#filesAhead?.note(entry);
		if (change.kind === "unchanged" && change.knownBlobs) {
			node.content = [...change.knownBlobs];
			this.blobs.noteReused(change.knownBlobs);
			this.summary.files.unchanged++;
			// Remembered as it was: the same state, unless the diff hook gave other blobs.
			const same = known !== undefined && change.knownBlobs === known[4];
			this.#remember(frame, name, same ? known : fileState(entry.size, node, [...change.knownBlobs]), !same);
			return undefined;
		}
		if (this.#directReads && this.files.batches(entry)) {
			const room = this.files.roomForSmallFiles;
			if (room) return room.then(() => this.#batchOrRead(entry, node, frame, name, change.kind));
		}
		return this.#batchOrRead(entry, node, frame, name, change.kind);
	}

	/** A small file into a batch for the workers to read, where it can be; else read through the file saver. */
	#batchOrRead(
		entry: SourceEntry,
		node: TreeNode & ScannedFile,
		frame: Frame,
		name: string,
		kind: ChangeKind,
	): Promise<void> | undefined {
		const batched = this.#directReads ? this.files.saveNow(entry) : undefined;
		if (batched) {
			const taken: BatchedNode = { entry, frame, node, name, kind, file: batched };
			frame.batched.push(taken);
			let files = this.#byBatch.get(batched.outcomes);
			if (!files) {
				const inBatch: BatchedNode[] = [];
				files = inBatch;
				this.#byBatch.set(batched.outcomes, inBatch);
				// A batch that failed fails the run, as its folders' trees would.
				const settled = batched.outcomes.then((outcomes) => this.#takeRead(inBatch, outcomes));
				this.#track(settled);
				void settled.catch(() => undefined).finally(() => this.#byBatch.delete(batched.outcomes));
			}
			files.push(taken);
			return undefined;
		}
		return this.#read(entry, node, frame, name, kind);
	}

	/** A file read through the file saver: it settles on its own, the walk waits only for a read slot. */
	async #read(entry: SourceEntry, node: TreeNode & ScannedFile, frame: Frame, name: string, kind: ChangeKind): Promise<void> {
		const ahead = this.#filesAhead?.take(entry);
		if (ahead && ahead.entry !== entry) {
			// Read ahead before it last changed: recorded as it was then, for the next run to read again.
			const then = toNode(node.name, ahead.entry);
			this.#totalBytes += then.size - node.size;
			Object.assign(node, then);
		}
		const settled = ahead
			? this.#stored(ahead.entry, node, frame, name, kind, ahead.read)
			: this.#stored(entry, node, frame, name, kind, (await this.files.save(entry)).done);
		this.#track(settled);
		frame.pending.push(settled);
	}

	/** A file's blob IDs once the file saver has them; a file that could not be read is skipped. */
	#stored(
		entry: SourceEntry,
		node: TreeNode & ScannedFile,
		frame: Frame,
		name: string,
		kind: ChangeKind,
		done: Promise<StoredFile>,
		relisted = false,
	): Promise<void> {
		return done.then(
			(stored) => {
				node.content = stored.ids;
				// What was read counts, not what the scan said (a file that grew, a command's output).
				this.#totalBytes += stored.size - node.size;
				node.size = stored.size;
				this.summary.files[kind]++;
				if (stored.changing) {
					// Warned of here, where the file is used: a file read ahead of the walk may go unused.
					node.changing = true;
					frame.changed = true;
					this.warn({
						path: displayPath(entry),
						reason: `kept changing while read (${stored.tries} tries); stored as last read`,
					});
				} else this.#remember(frame, name, fileState(entry.size, node, stored.ids), true);
			},
			(error: unknown) =>
				relisted ? this.#skipped(entry, node, frame, error) : this.#readAgainOrSkip(entry, node, frame, name, kind, error),
		);
	}

	/**
	 * A file that is another file since it was listed — an editor saves by writing a new file
	 * and renaming it over the old — is backed up as its source lists it now, once; a second
	 * replacement, or any other failure, skips it. Only a source's own entries are listed again:
	 * a `scan` tap's would bypass the tap.
	 */
	async #readAgainOrSkip(
		entry: SourceEntry,
		node: TreeNode & ScannedFile,
		frame: Frame,
		name: string,
		kind: ChangeKind,
		error: unknown,
	): Promise<void> {
		const replaced = (error as NodeJS.ErrnoException | null)?.code === "ECHANGED";
		const now = replaced && this.#directReads ? await entry.relist?.().catch(() => undefined) : undefined;
		if (now?.type !== "file") return this.#skipped(entry, node, frame, error);
		const fresh = toNode(node.name, now);
		this.#totalBytes += fresh.size - node.size;
		Object.assign(node, fresh);
		const { done } = await this.files.save(now);
		await this.#stored(now, node, frame, name, kind, done, true);
	}

	/** The walk leaves a directory: its tree is saved once its files (and subtrees) are. */
	async #closeFrame(): Promise<void> {
		const frame = this.#stack.pop() as Frame;
		const parent = this.#stack.at(-1) as Frame;
		// Trees may wait on small files gathered for the workers: the file saver sends them while the walk waits.
		if (this.#openTrees.size >= OPEN_TREES) await this.files.waitFor(this.#nextTreeSaved());
		const saved = (async () => {
			await Promise.all(frame.pending);
			await this.#settleBatched(frame);
			const id = await this.#saveTree(frame.nodes);
			if (frame.node) frame.node.subtree = id;
			await this.#rememberStates(frame);
		})();
		this.#track(saved);
		this.#openTrees.add(saved);
		void saved
			.finally(() => {
				this.#openTrees.delete(saved);
				this.#treeSaved?.resolve();
				this.#treeSaved = undefined;
			})
			.catch(() => undefined);
		parent.pending.push(saved);
	}

	/**
	 * One promise for the next tree saved, shared: a race over every open tree would add a
	 * reaction to each of them per folder closed, hundreds per folder, kept until they settle.
	 * A failure is the walk's to report, at its next entry.
	 */
	#nextTreeSaved(): Promise<void> {
		if (!this.#treeSaved) {
			let resolve!: () => void;
			const promise = new Promise<void>((done) => (resolve = done));
			this.#treeSaved = { promise, resolve };
		}
		return this.#treeSaved.promise;
	}

	/** A file vanished or unreadable between listing and reading: a warning, not an abort; any other failure is thrown. */
	#skipped(entry: SourceEntry, node: TreeNode, frame: Frame, error: unknown): void {
		if (error instanceof HoldfastError) throw error;
		if ((error as NodeJS.ErrnoException).code === undefined) throw error;
		frame.nodes.splice(frame.nodes.indexOf(node), 1);
		frame.changed = true;
		// Not in the snapshot: nor in its size.
		this.#totalBytes -= node.size;
		this.summary.files.skipped++;
		this.warn({ path: displayPath(entry), reason: `skipped: ${(error as Error).message}` });
	}

	/**
	 * A batch's files read by the workers get their IDs as soon as it is read, whatever folder
	 * they are in, and let their entries go: a folder of a million small files holds no entry
	 * until it closes. Those not read wait for their folder to close.
	 */
	#takeRead(files: readonly BatchedNode[], outcomes: readonly BatchedOutcome[]): void {
		for (const taken of files) {
			const outcome = outcomes[taken.file.index];
			if (typeof outcome !== "string") continue;
			const { node, frame, name, kind } = taken;
			node.content = [outcome];
			this.summary.files[kind]++;
			this.#remember(frame, name, fileState(node.size, node, [outcome]), true);
			taken.entry = undefined;
		}
	}

	/**
	 * The folder's small files read into batches by the workers, once each batch is: one wait
	 * per batch, not per file. A file that changed since it was listed is read again the careful
	 * way; one that could not be read is skipped.
	 */
	async #settleBatched(frame: Frame): Promise<void> {
		let batch: Promise<BatchedOutcome[]> | undefined;
		let outcomes: BatchedOutcome[] = [];
		for (const { entry, node, name, kind, file } of frame.batched) {
			if (file.outcomes !== batch) {
				batch = file.outcomes;
				outcomes = await batch;
			}
			// Read: taken in by #takeRead already.
			if (entry === undefined) continue;
			const outcome = outcomes[file.index] as BatchedOutcome;
			if (outcome === CHANGED) {
				const { done } = await this.files.save(entry);
				await this.#stored(entry, node, frame, name, kind, done);
			} else if (typeof outcome !== "string") await this.#readAgainOrSkip(entry, node, frame, name, kind, outcome);
		}
	}

	#remember(frame: Frame, name: string, state: FileState, changed: boolean): void {
		frame.states[name] = state;
		frame.remembered++;
		if (changed) frame.changed = true;
	}

	/** A folder's states are written once all its files are stored, and only when they differ from the last run's. */
	async #rememberStates(frame: Frame): Promise<void> {
		const dropped = frame.known !== undefined && Object.keys(frame.known.f).length !== frame.remembered;
		if (!frame.changed && !dropped) return;
		if (frame.remembered === 0 && frame.known === undefined) return;
		await this.states.remember(frame.stateKey, { v: 2, f: frame.states }, frame.remembered);
	}

	/** The first failure stops the walk at its next entry, and `finish` reports it. */
	#track(task: Promise<void>): void {
		task.catch((error: unknown) => {
			this.#failure ??= error;
		});
	}
}

function toNode(name: string, entry: SourceEntry): TreeNode & ScannedFile {
	const node: TreeNode & ScannedFile = {
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

/** The name a source root gets at the snapshot's top: its folder's name, numbered when another root took it. */
export function rootName(root: string, used: Set<string>): string {
	return uniqueName(basename(root) || "root", used);
}

function uniqueName(name: string, used: Set<string>): string {
	let candidate = name;
	for (let n = 2; used.has(candidate); n++) candidate = `${name}-${n}`;
	used.add(candidate);
	return candidate;
}
