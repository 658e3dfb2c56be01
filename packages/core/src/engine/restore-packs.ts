import { HoldfastError } from "../host/errors.js";
import type { BlobLocation } from "../repository/index-file.js";
import type { Repository } from "../repository/repository.js";
import type { TreeNode } from "../repository/tree.js";
import { atPath, targetError } from "./restore-errors.js";
import { type Placement, TempFile } from "./restore-writer.js";

/** One file of the snapshot to write into the target. */
export interface FileTask {
	readonly at: Placement;
	readonly display: string;
	readonly node: TreeNode;
	/** Called once the file is in place under its name. */
	readonly placed: () => void;
}

export interface PackRestorerOptions {
	/** Sealed bytes read plus plaintext opened, not yet written: what a restore holds however large its files. */
	readonly budgetBytes?: number;
	/** Ranged reads under way at once (of packs, or of parts of one). */
	readonly reads?: number;
}

/** Blobs this far apart or closer are read with one request: the gap costs less than another request. */
const GAP = 256 * 1024;
/** Longest single read: memory per read stays bounded, and a large pack is read in parts in parallel. */
const MAX_RANGE = 4 * 1024 * 1024;
/** Most blobs in one read: the files they fill are open at once while it runs. */
const MAX_RANGE_BLOBS = 128;

interface Use {
	readonly file: PlannedFile;
	readonly offset: number;
}

interface Needed extends BlobLocation {
	readonly id: string;
	readonly uses: Use[];
}

interface PlannedFile {
	readonly task: FileTask;
	readonly out: TempFile;
	pending: number;
	/** Set once the temporary file's creation has started. */
	created?: Promise<void>;
}

/**
 * Writes a batch of files pack by pack: the trees say which blobs each file needs and the
 * index where they lie, so each needed span of a pack is read once (one ranged read), all its
 * blobs opened on the worker threads in one hand-off, and each written at its place in every
 * file that has it. Several reads run at once under a cap on the bytes they hold, so memory
 * stays bounded whatever the size of the files.
 */
export class PackRestorer {
	readonly #budget: ByteBudget;

	constructor(
		private readonly repository: Repository,
		private readonly isRoot: boolean,
		options: PackRestorerOptions = {},
	) {
		this.#budget = new ByteBudget(options.budgetBytes ?? 32 * 1024 * 1024, options.reads ?? 4);
	}

	async restore(tasks: readonly FileTask[]): Promise<void> {
		const files: PlannedFile[] = [];
		const packs = new Map<string, Map<string, Needed>>();
		for (const task of tasks) {
			let offset = 0;
			const uses: { location: BlobLocation; id: string; offset: number }[] = [];
			for (const id of task.node.content ?? []) {
				const location = await atPath(task.display, () => this.#locate(id));
				uses.push({ location, id, offset });
				offset += location.rawLength;
			}
			const file: PlannedFile = { task, out: new TempFile(task.at, task.node, offset), pending: uses.length };
			files.push(file);
			for (const use of uses) {
				let blobs = packs.get(use.location.packKey);
				if (!blobs) packs.set(use.location.packKey, (blobs = new Map()));
				let needed = blobs.get(use.id);
				if (!needed) blobs.set(use.id, (needed = { ...use.location, id: use.id, uses: [] }));
				needed.uses.push({ file, offset: use.offset });
			}
		}
		const running: Promise<void>[] = [];
		let failure: { reason: unknown } | undefined;
		const fail = (reason: unknown) => {
			failure ??= { reason };
		};
		try {
			for (const file of files) if (file.pending === 0) this.#finish(file);
			// Packs in the order the files first need them: early files complete early.
			for (const [packKey, blobs] of packs) {
				for (const range of rangesOf([...blobs.values()])) {
					const cost = rangeCost(range);
					await this.#budget.take(cost);
					if (failure) {
						this.#budget.give(cost);
						break;
					}
					running.push(
						this.#readRange(packKey, range, this.#createFiles(range))
							.catch(fail)
							.finally(() => this.#budget.give(cost)),
					);
				}
				if (failure) break;
			}
		} catch (error) {
			fail(error);
		}
		// Reads under way finish before a failure is reported: none writes into a removed file.
		await Promise.all(running);
		if (failure) {
			for (const file of files) if (file.pending > 0) file.out.abandon();
			throw failure.reason;
		}
	}

	async #locate(id: string): Promise<BlobLocation> {
		const location = this.repository.index.blobs.get(id) ?? (await this.repository.locateBlob(id));
		if (!location) throw new HoldfastError("NOT_FOUND", `blob ${id.slice(0, 16)} is in no pack of the index`);
		return location;
	}

	/** The temporary files a read will write into, created while it reads. */
	#createFiles(blobs: readonly Needed[]): Promise<unknown> {
		const creating = new Set<Promise<void>>();
		for (const blob of blobs) {
			for (const { file } of blob.uses) {
				// A file another read already creates is waited for too: no write before its creation.
				file.created ??= atPath(file.task.display, () => file.out.create());
				creating.add(file.created);
			}
		}
		const all = Promise.all(creating);
		all.catch(() => undefined);
		return all;
	}

	async #readRange(packKey: string, blobs: readonly Needed[], created: Promise<unknown>): Promise<void> {
		const first = blobs[0]?.uses[0]?.file.task.display ?? packKey;
		// Both settle before either failure is reported: no file is created after the cleanup.
		const [loaded, made] = await Promise.allSettled([
			atPath(first, () => this.repository.loadBlobRange(packKey, blobs)),
			created,
		]);
		if (loaded.status === "rejected") throw loaded.reason;
		if (made.status === "rejected") throw made.reason;
		const plain = loaded.value;
		blobs.forEach((blob, i) => {
			const data = plain[i] as Buffer;
			for (const use of blob.uses) {
				const { file } = use;
				if (file.pending <= 0) continue;
				writeAt(file, () => file.out.write(data, use.offset));
				if (--file.pending === 0) this.#finish(file);
			}
		});
	}

	#finish(file: PlannedFile): void {
		file.pending = -1;
		writeAt(file, () => file.out.finish(this.isRoot));
		file.task.placed();
	}
}

/** A failed write names the file, and its temporary file goes. */
function writeAt(file: PlannedFile, step: () => void): void {
	try {
		step();
	} catch (error) {
		file.pending = -1;
		file.out.abandon();
		throw targetError(file.task.display, error);
	}
}

/** Blobs sorted by offset, cut into reads: close neighbours together, no read longer than MAX_RANGE. */
function rangesOf(blobs: Needed[]): Needed[][] {
	blobs.sort((a, b) => a.offset - b.offset);
	const ranges: Needed[][] = [];
	let current: Needed[] = [];
	let start = 0;
	let end = 0;
	for (const blob of blobs) {
		if (
			current.length > 0 &&
			(blob.offset - end > GAP || blob.offset + blob.length - start > MAX_RANGE || current.length >= MAX_RANGE_BLOBS)
		) {
			ranges.push(current);
			current = [];
		}
		if (current.length === 0) start = blob.offset;
		current.push(blob);
		end = Math.max(end, blob.offset + blob.length);
	}
	if (current.length > 0) ranges.push(current);
	return ranges;
}

/** What a read holds until written: its sealed span and the plaintext of its blobs. */
function rangeCost(blobs: readonly Needed[]): number {
	const start = blobs[0]?.offset ?? 0;
	let end = start;
	let plain = 0;
	for (const blob of blobs) {
		end = Math.max(end, blob.offset + blob.length);
		plain += blob.rawLength;
	}
	return end - start + plain;
}

/** A cap on bytes and tasks in flight; one task larger than the cap runs alone. */
class ByteBudget {
	#used = 0;
	#tasks = 0;
	readonly #waiting: (() => void)[] = [];

	constructor(
		readonly limit: number,
		readonly maxTasks: number,
	) {}

	async take(bytes: number): Promise<void> {
		while (this.#tasks >= this.maxTasks || (this.#used > 0 && this.#used + bytes > this.limit)) {
			await new Promise<void>((resolve) => this.#waiting.push(resolve));
		}
		this.#used += bytes;
		this.#tasks++;
	}

	give(bytes: number): void {
		this.#used -= bytes;
		this.#tasks--;
		for (const wake of this.#waiting.splice(0)) wake();
	}
}
