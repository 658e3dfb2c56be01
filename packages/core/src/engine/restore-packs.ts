import { HoldfastError, isDataLoss, isHoldfastError } from "../host/errors.js";
import { Semaphore } from "../host/semaphore.js";
import type { BlobLocation } from "../repository/index-file.js";
import type { Repository } from "../repository/repository.js";
import type { TreeNode } from "../repository/tree.js";
import { atPath, targetError } from "./restore-errors.js";
import { failureError, type RangeRestored, type WholeFile } from "./restore-range-work.js";
import { type Placement, TempFile } from "./restore-writer.js";

/** One file of the snapshot to write into the target. */
export interface FileTask {
	readonly at: Placement;
	readonly display: string;
	/** Its path from the snapshot's root, as the restore's callers name it. */
	readonly rel: string;
	readonly node: TreeNode;
	/** Called once the file is in place under its name. */
	readonly placed: () => void;
}

export interface PackRestorerOptions {
	/** Sealed bytes read plus plaintext opened, not yet written: what a restore holds however large its files (by default 4 MiB per read, at most 64 MiB). */
	readonly budgetBytes?: number;
	/** Ranged reads under way at once (of packs, or of parts of one). */
	readonly reads?: number;
	/**
	 * A file whose data is damaged or gone from the store (no version of a pack verifies, or it
	 * is missing): told here and left out, and the restore goes on with every other file, as a
	 * user recovering from an attack needs. Without it such a failure ends the restore.
	 */
	readonly onLost?: (task: FileTask, reason: string) => void;
}

/** What the store's data lacks, without the target path the error was first told with (another file's). */
function lossReason(error: unknown): string {
	const inner =
		error instanceof Error && error.cause instanceof Error && error.message.startsWith("restore: ") ? error.cause : error;
	return inner instanceof Error ? (inner.message.split("\n")[0] ?? inner.name) : String(inner);
}

/** Blobs this far apart or closer are read with one request: the gap costs less than another request. */
const GAP = 256 * 1024;
/**
 * Longest single read: memory per read stays bounded, and a large pack is read in parts in
 * parallel. A read holds its sealed span and the plaintext opened from it, together about
 * two and a half times this on compressible data. At 4 MiB one such read filled a disk's
 * budget, so a read waited for the one before it to be written and one worker opened while
 * the other idled: a mixed restore (scale 0.25, into tmpfs) took 0.92–0.96 s; at 2 MiB three
 * are under way, 0.80–0.83 s, and the same peak.
 */
const MAX_RANGE = 2 * 1024 * 1024;
/**
 * Bytes a restore may hold per read the destination keeps under way: a disk's four reads get
 * 16 MiB. A store far away asks for more reads, each waiting a round trip, and gets room for
 * them, or its reads would wait on the budget instead (from the S3 test server, interleaved
 * with restic's 1.35–1.45 s: 1.19–1.36 s at 16 MiB, 1.14–1.23 s at 32, peaks 171–209 MiB).
 */
const BYTES_PER_READ = 2 * MAX_RANGE;
/** What the reads of a store asking for very many may hold in all. */
const MAX_BUDGET = 64 * 1024 * 1024;
/** Most blobs in one read: the files they fill are open at once while it runs. */
const MAX_RANGE_BLOBS = 128;
/** Ranged reads at once unless the destination asks otherwise: what a local disk wants. */
const DEFAULT_READS = 4;

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
	readonly size: number;
	/**
	 * Made only for a file the main thread creates and finishes: an empty one, or one spanning
	 * several reads, whose blobs the worker threads write into it at its descriptor.
	 */
	out?: TempFile;
	pending: number;
	/** Set once the temporary file's creation has started. */
	created?: Promise<void>;
	/** The one read range all its blobs lie in, or -1 when they lie in several. */
	range?: number;
}

/** Ranges sorted by pack, and the files that lie wholly in one: written where the range is opened. */
interface PlannedRange {
	readonly packKey: string;
	readonly blobs: Needed[];
	readonly whole: PlannedFile[];
}

/**
 * Writes a batch of files pack by pack: the trees say which blobs each file needs and the
 * index where they lie, so each needed span of a pack is read once (one ranged read), all its
 * blobs opened on the worker threads in one hand-off, and each written there at its place in
 * every file that has it. Several reads run at once under a cap on the bytes they hold, so memory
 * stays bounded whatever the size of the files.
 */
export class PackRestorer {
	/** Bytes the reads under way hold; a read larger than the budget runs alone. */
	readonly #budget: Semaphore;
	readonly #reads: Semaphore;
	readonly #onLost: PackRestorerOptions["onLost"];

	constructor(
		private readonly repository: Repository,
		private readonly isRoot: boolean,
		options: PackRestorerOptions = {},
	) {
		const reads = options.reads ?? readsFor(repository);
		this.#budget = new Semaphore(options.budgetBytes ?? Math.min(MAX_BUDGET, reads * BYTES_PER_READ));
		this.#reads = new Semaphore(reads);
		this.#onLost = options.onLost;
	}

	async restore(tasks: readonly FileTask[]): Promise<void> {
		const files: PlannedFile[] = [];
		const packs = new Map<string, Map<string, Needed>>();
		// Every blob of a file is found before any is planned: a file with one lost is left out whole.
		const locations: BlobLocation[] = [];
		for (const task of tasks) {
			const content = task.node.content ?? [];
			let size = 0;
			locations.length = 0;
			try {
				for (const id of content) {
					// Found in the loaded index without a hop through a promise: planning a batch costs no await per blob.
					const location = this.repository.index.blobs.get(id) ?? (await atPath(task.display, () => this.#locate(id)));
					locations.push(location);
					size += location.rawLength;
				}
			} catch (error) {
				if (!this.#onLost || !isDataLoss(error)) throw error;
				this.#onLost(task, lossReason(error));
				continue;
			}
			const file: PlannedFile = { task, size, pending: locations.length };
			files.push(file);
			let offset = 0;
			for (let i = 0; i < locations.length; i++) {
				const location = locations[i] as BlobLocation;
				const id = content[i] as string;
				let blobs = packs.get(location.packKey);
				if (!blobs) packs.set(location.packKey, (blobs = new Map()));
				let needed = blobs.get(id);
				if (!needed) blobs.set(id, (needed = neededBlob(location, id)));
				needed.uses.push({ file, offset });
				offset += location.rawLength;
			}
		}
		const ranges: PlannedRange[] = [];
		for (const [packKey, blobs] of packs) {
			for (const range of rangesOf([...blobs.values()])) {
				const at = ranges.length;
				ranges.push({ packKey, blobs: range, whole: [] });
				for (const blob of range) {
					for (const { file } of blob.uses) {
						if (file.range === undefined) file.range = at;
						else if (file.range !== at) file.range = -1;
					}
				}
			}
		}
		for (const file of files) if (file.range !== undefined && file.range >= 0) ranges[file.range]?.whole.push(file);
		const running: Promise<void>[] = [];
		let failure: { reason: unknown } | undefined;
		const fail = (reason: unknown) => {
			failure ??= { reason };
		};
		const lost = new Set<PlannedFile>();
		// A read of damaged or missing data loses the files that needed it; any other failure ends the restore.
		const failRange = (range: PlannedRange) => (reason: unknown) => {
			if (!this.#onLost || !isDataLoss(reason)) return fail(reason);
			const why = lossReason(reason);
			for (const blob of range.blobs) this.#lose(blob, why, lost);
		};
		try {
			for (const file of files) if (file.pending === 0) this.#finish(file);
			// Packs in the order the files first need them: early files complete early.
			for (const range of ranges) {
				const cost = rangeCost(range.blobs);
				await this.#take(cost);
				if (failure) {
					this.#give(cost);
					break;
				}
				running.push(
					this.#readRange(range, this.#createFiles(range.blobs), lost)
						.catch(failRange(range))
						.finally(() => this.#give(cost)),
				);
			}
		} catch (error) {
			fail(error);
		}
		// Reads under way finish before a failure is reported: none writes into a removed file.
		await Promise.all(running);
		for (const file of lost) file.out?.abandon();
		if (failure) {
			for (const file of files) if (file.pending > 0) file.out?.abandon();
			throw failure.reason;
		}
	}

	/** A place among the reads, then the read's bytes: both are held until it is written. */
	async #take(cost: number): Promise<void> {
		await this.#reads.acquire();
		await this.#budget.acquire(cost);
	}

	#give(cost: number): void {
		this.#budget.release(cost);
		this.#reads.release();
	}

	async #locate(id: string): Promise<BlobLocation> {
		const location = this.repository.index.blobs.get(id) ?? (await this.repository.locateBlob(id));
		if (!location) throw new HoldfastError("NOT_FOUND", `blob ${id.slice(0, 16)} is in no pack of the index`);
		return location;
	}

	/** The temporary files of files spanning several reads that this read writes into: its worker needs them open. */
	#createFiles(blobs: readonly Needed[]): Promise<unknown> {
		const creating = new Set<Promise<void>>();
		for (const blob of blobs) {
			for (const { file } of blob.uses) {
				if (file.range !== -1) continue;
				// A file another read already creates is waited for too: no write before its creation.
				file.created ??= atPath(file.task.display, () => outOf(file).create());
				creating.add(file.created);
			}
		}
		const all = Promise.all(creating);
		all.catch(() => undefined);
		return all;
	}

	async #readRange(range: PlannedRange, created: Promise<unknown>, lost: Set<PlannedFile>): Promise<void> {
		const { packKey, blobs, whole } = range;
		const first = blobs[0]?.uses[0]?.file.task.display ?? packKey;
		const writes = new Map<PlannedFile, number[]>(whole.map((file) => [file, []]));
		/** Files spanning several reads: the blobs of this read each takes, and how many uses that is. */
		const spanning = new Map<PlannedFile, { writes: number[]; uses: number }>();
		blobs.forEach((blob, i) => {
			for (const { file, offset } of blob.uses) {
				if (file.range !== -1) {
					writes.get(file)?.push(i, offset);
					continue;
				}
				if (file.pending <= 0) continue;
				let span = spanning.get(file);
				if (!span) spanning.set(file, (span = { writes: [], uses: 0 }));
				span.writes.push(i, offset);
				span.uses++;
			}
		});
		const files = wholeFiles(whole, writes);
		// The thread that opens the blobs writes them into the spanning files: those exist first.
		await created;
		const spanFiles = [...spanning.keys()];
		const spans = spanFiles.map((file) => ({ fd: outOf(file).fd, writes: spanning.get(file)?.writes ?? [] }));
		const read = (spareDamaged: boolean) =>
			atPath(first, () => this.repository.restoreBlobRange(packKey, blobs, { files, spans, chown: this.isRoot }, spareDamaged));
		let restored: RangeRestored | undefined;
		try {
			restored = await read(false).catch(async (error: unknown) => {
				if (!this.#onLost || blobs.length < 2 || !isHoldfastError(error, "CORRUPT")) throw error;
				// A blob that verifies in no version of the pack. With one version, what verifies in it is
				// all there is: read once more, the damaged blobs left out. With several, each half is
				// read again trying every version, down to the blob: an attacker's newer version costs
				// nothing a locked one holds intact.
				if ((await this.repository.reader.versionsOf(packKey)).length > 1) return undefined;
				return read(true);
			});
		} catch (error) {
			for (const file of whole) file.pending = -1;
			throw error;
		}
		if (!restored) return this.#readHalves(range, lost);
		const done: RangeRestored = restored;
		for (const { index, message } of done.damaged ?? []) this.#lose(blobs[index] as Needed, message, lost);
		this.#placeWhole(whole, done, lost);
		spanFiles.forEach((file, i) => {
			const end = done.spanEnds[i];
			if (end === undefined || lost.has(file)) return;
			outOf(file).wrote(end);
			file.pending -= spanning.get(file)?.uses ?? 0;
			if (file.pending === 0) this.#finish(file);
		});
		// A span that failed is not removed here: another read may be writing into the same file.
		// It stays pending, and restore() removes it once every read has ended.
		const failed = restored.spanFailure;
		if (failed) throw targetError((spanFiles[failed.index] as PlannedFile).task.display, failureError(failed));
	}

	/**
	 * The range read again as two, one after the other: a file whole in the range and in one half
	 * stays whole there; one with blobs in both now spans them, written by each into its
	 * temporary file. Data lost in a half costs the files of that half's blobs, and no others.
	 */
	async #readHalves(range: PlannedRange, lost: Set<PlannedFile>): Promise<void> {
		const middle = Math.ceil(range.blobs.length / 2);
		const halves = [range.blobs.slice(0, middle), range.blobs.slice(middle)].map((blobs) => ({
			blobs,
			files: new Set(blobs.flatMap((blob) => blob.uses.map((use) => use.file))),
		}));
		const [a, b] = halves as [(typeof halves)[0], (typeof halves)[0]];
		for (const file of range.whole) if (a.files.has(file) && b.files.has(file)) file.range = -1;
		for (const half of halves) {
			const sub: PlannedRange = {
				packKey: range.packKey,
				blobs: half.blobs,
				whole: range.whole.filter((file) => file.range !== -1 && file.pending > 0 && half.files.has(file)),
			};
			try {
				await this.#readRange(sub, this.#createFiles(sub.blobs), lost);
			} catch (error) {
				if (!isDataLoss(error)) throw error;
				const why = lossReason(error);
				for (const blob of sub.blobs) this.#lose(blob, why, lost);
			}
		}
	}

	/** Every file that needs `blob` is told lost and left out. */
	#lose(blob: Needed, reason: string, lost: Set<PlannedFile>): void {
		for (const { file } of blob.uses) {
			if (lost.has(file)) continue;
			lost.add(file);
			file.pending = -1;
			this.#onLost?.(file.task, reason);
		}
	}

	/** Files written by the pool's thread are placed (those lost were not written); the one that failed names the failure. */
	#placeWhole(whole: readonly PlannedFile[], restored: RangeRestored, lost: ReadonlySet<PlannedFile>): void {
		whole.forEach((file, i) => {
			file.pending = -1;
			if (i < restored.written && !lost.has(file)) file.task.placed();
		});
		const { failure } = restored;
		if (failure) throw targetError((whole[failure.index] as PlannedFile).task.display, failureError(failure));
	}

	#finish(file: PlannedFile): void {
		file.pending = -1;
		writeAt(file, () => outOf(file).finish(this.isRoot));
		file.task.placed();
	}
}

/** A blob some files of the batch need, where it lies; one object of one shape for every blob. */
function neededBlob(location: BlobLocation, id: string): Needed {
	const { type, packKey, offset, length, rawLength } = location;
	return { type, packKey, offset, length, rawLength, id, uses: [] };
}

function outOf(file: PlannedFile): TempFile {
	file.out ??= new TempFile(file.task.at, file.task.node, file.size);
	return file.out;
}

/**
 * What the pool's thread needs to write each file: where, its bytes' places, owner, mode and
 * time. The paths are copied into one buffer of their exact length: a path cut from Node's
 * shared 8 KiB pool would carry its whole slab across the thread hop, a copy per file. A
 * path is its folder's, a slash and its name: the folder and name are cut from it there.
 */
function wholeFiles(whole: readonly PlannedFile[], writes: Map<PlannedFile, number[]>): WholeFile[] {
	let length = 0;
	for (const { task } of whole) length += task.at.path.length;
	const paths = new Uint8Array(length);
	let used = 0;
	return whole.map((file) => {
		const { at, node } = file.task;
		paths.set(at.path, used);
		used += at.path.length;
		return {
			path: paths.subarray(used - at.path.length, used),
			nameAt: at.path.length - at.name.length,
			removeFirst: at.removeFirst ?? false,
			size: file.size,
			meta: { uid: node.uid, gid: node.gid, mode: node.mode, mtime: node.mtime },
			writes: writes.get(file) ?? [],
		};
	});
}

/** A failed write names the file, and its temporary file goes. */
function writeAt(file: PlannedFile, step: () => void): void {
	try {
		step();
	} catch (error) {
		file.pending = -1;
		file.out?.abandon();
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

/** The reads the destination asks for (`readsInFlight`), within 1–64; a destination that says nothing gets a disk's four. */
function readsFor(repository: Repository): number {
	const asked = repository.destination.capabilities.readsInFlight;
	if (asked === undefined || !Number.isFinite(asked)) return DEFAULT_READS;
	return Math.min(64, Math.max(1, Math.floor(asked)));
}
