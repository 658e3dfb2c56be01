import { BlobRecords, RECORD_WORDS } from "./blob-records.js";
import type { BlobType } from "./format.js";
import type { BlobLocation } from "./index-file.js";

/** A blob ID as format 1 writes it: a 32-byte keyed hash in lowercase hex (a loop: a RegExp costs more per call). */
function isHexId(id: unknown): id is string {
	if (typeof id !== "string" || id.length !== 64) return false;
	for (let i = 0; i < 64; i++) {
		const c = id.charCodeAt(i);
		if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
	}
	return true;
}

/** An ID is 32 bytes: eight 32-bit words, compared and copied word by word (a native call per ID costs more). */
const ID_WORDS = 8;
/** Words of each ID the table keeps in memory: 64 bits tell IDs apart; the full ID is checked on a hit. */
const PREFIX_WORDS = 2;
/** The pack number of an entry that was deleted: its slot stays, so its ID can come back in place. */
const GONE = 0xffffffff;
/** Past this many blobs, full IDs and locations go to a temporary file (about 48 bytes a blob). */
export const SPILL_ABOVE = 1 << 20;

/**
 * Where every blob is, in a few flat arrays instead of an object per blob. In memory, for each
 * blob: the first 8 bytes of its ID and its pack number, and an open-addressing hash over
 * them (about 20 bytes a blob); the full ID and the location are records in `BlobRecords`,
 * read on a hit, which also proves the hit (two IDs that share 64 bits are told apart there).
 * Reads hand out fresh `BlobLocation` objects; IDs that are not 64 hex digits live in a Map.
 */
export class BlobTable implements Iterable<[string, BlobLocation]> {
	#prefix = new Uint32Array(0);
	#pack = new Uint32Array(0);
	readonly #records: BlobRecords;
	#entries = 0;
	#live = 0;
	/** Open-addressing hash slots: entry number + 1, or 0 for a free slot. */
	#slots = new Uint32Array(16);
	readonly #packKeys: string[] = [];
	readonly #packNumbers = new Map<string, number>();
	#lastPack = 0;
	readonly #odd = new Map<string, BlobLocation>();
	/** Scratch room for the ID being looked up, as bytes (to write hex into) and as words. */
	readonly #probeWords = new Uint32Array(ID_WORDS);
	readonly #probe = Buffer.from(this.#probeWords.buffer);

	constructor(options: { spillAbove?: number } = {}) {
		this.#records = new BlobRecords(options.spillAbove ?? SPILL_ABOVE);
	}

	get size(): number {
		return this.#live + this.#odd.size;
	}

	/** Whether full IDs and locations are in a temporary file rather than in memory. */
	get onDisk(): boolean {
		return this.#records.onDisk;
	}

	/**
	 * Makes room for `count` more blobs at once, and a sixteenth more for what the run adds:
	 * growing copies every array, briefly holding the table twice.
	 */
	reserve(count: number): void {
		const wanted = this.#entries + count + Math.max(1024, Math.ceil(count / 16));
		this.#growEntries(wanted);
		this.#growSlots(wanted);
	}

	get(id: string): BlobLocation | undefined {
		if (!isHexId(id)) return this.#odd.get(id);
		const entry = this.#find(id);
		if (entry < 0) return this.#odd.size > 0 ? this.#odd.get(id) : undefined;
		return this.#location(entry, this.#records.read(entry));
	}

	has(id: string): boolean {
		if (!isHexId(id)) return this.#odd.has(id);
		return this.#find(id) >= 0 || (this.#odd.size > 0 && this.#odd.has(id));
	}

	set(id: string, location: BlobLocation): this {
		const { offset, length, rawLength } = location;
		// A location past 32 bits (no pack of ours is that large) is kept whole, beside the table.
		if (!isHexId(id) || !fitsWord(offset) || !fitsWord(length) || !fitsWord(rawLength)) {
			if (isHexId(id)) this.delete(id);
			this.#odd.set(id, { ...location });
			return this;
		}
		if (this.#odd.size > 0) this.#odd.delete(id);
		this.#probe.write(id, "hex");
		const { packKey, type } = location;
		this.setAt(this.#probeWords, 0, packKey, type === "tree" ? 1 : 0, offset, length, rawLength);
		return this;
	}

	/** The pack that holds the blob whose raw ID is `words[at, at + 8)`, if any. */
	packKeyAt(words: Uint32Array, at: number): string | undefined {
		const entry = (this.#slots[this.#slotOfWords(words, at)] as number) - 1;
		return entry >= 0 && this.#pack[entry] !== GONE ? this.#packKeys[this.#pack[entry] as number] : undefined;
	}

	/**
	 * `set` for a raw ID at `words[at]`, without going through hex; unless `keep` says the
	 * live copy already there stays (one probe for the merge's look-up and write).
	 */
	setAt(
		words: Uint32Array,
		at: number,
		packKey: string,
		type: number,
		offset: number,
		length: number,
		rawLength: number,
		keep?: (current: string) => boolean,
	): void {
		const slot = this.#slotOfWords(words, at);
		let entry = (this.#slots[slot] as number) - 1;
		if (entry >= 0 && keep && this.#pack[entry] !== GONE && keep(this.#packKeys[this.#pack[entry] as number] as string)) {
			return;
		}
		if (entry < 0) {
			this.#growEntries(this.#entries + 1);
			entry = this.#entries++;
			for (let w = 0; w < PREFIX_WORDS; w++) this.#prefix[entry * PREFIX_WORDS + w] = words[at + w] as number;
			this.#slots[slot] = entry + 1;
			this.#live++;
			this.#pack[entry] = this.#packNumber(packKey);
			if (this.#entries * 4 > this.#slots.length * 3) this.#growSlots(this.#entries + 1);
		} else {
			if (this.#pack[entry] === GONE) this.#live++;
			this.#pack[entry] = this.#packNumber(packKey);
		}
		this.#records.write(entry, words, at, type === 1 ? 1 : 0, offset, length, rawLength);
	}

	delete(id: string): boolean {
		if (!isHexId(id)) return this.#odd.delete(id);
		const entry = this.#find(id);
		if (entry < 0) return this.#odd.delete(id);
		this.#pack[entry] = GONE;
		this.#live--;
		return true;
	}

	/** Drops every blob in pack `packKey` (grooming deleted it). */
	deletePack(packKey: string): void {
		const number = this.#packNumbers.get(packKey);
		if (number !== undefined) {
			for (let entry = 0; entry < this.#entries; entry++) {
				if (this.#pack[entry] === number) {
					this.#pack[entry] = GONE;
					this.#live--;
				}
			}
		}
		for (const [id, location] of this.#odd) if (location.packKey === packKey) this.#odd.delete(id);
	}

	/** The blobs in the given packs: a scan of pack numbers, with no string made for the others. */
	*inPacks(packKeys: ReadonlySet<string>): IterableIterator<[string, BlobLocation]> {
		const numbers = new Set<number>();
		for (const key of packKeys) {
			const number = this.#packNumbers.get(key);
			if (number !== undefined) numbers.add(number);
		}
		if (numbers.size > 0) {
			for (let entry = 0; entry < this.#entries; entry++) {
				if (!numbers.has(this.#pack[entry] as number)) continue;
				const record = this.#records.read(entry);
				yield [idOf(record), this.#location(entry, record)];
			}
		}
		for (const [id, location] of this.#odd) if (packKeys.has(location.packKey)) yield [id, { ...location }];
	}

	*entries(): IterableIterator<[string, BlobLocation]> {
		// Records are read a batch at a time: one read of the file for many entries.
		const batch = 4096;
		for (let start = 0; start < this.#entries; start += batch) {
			const count = Math.min(batch, this.#entries - start);
			const records = this.#records.readRange(start, count).slice();
			for (let i = 0; i < count; i++) {
				const entry = start + i;
				if (this.#pack[entry] === GONE) continue;
				const record = records.subarray(i * RECORD_WORDS, (i + 1) * RECORD_WORDS);
				yield [idOf(record), this.#location(entry, record)];
			}
		}
		for (const [id, location] of this.#odd) yield [id, { ...location }];
	}

	*keys(): IterableIterator<string> {
		for (const [id] of this.entries()) yield id;
	}

	*values(): IterableIterator<BlobLocation> {
		for (const [, location] of this.entries()) yield location;
	}

	[Symbol.iterator](): IterableIterator<[string, BlobLocation]> {
		return this.entries();
	}

	#location(entry: number, record: Uint32Array): BlobLocation {
		return {
			type: (record[8] === 1 ? "tree" : "data") as BlobType,
			packKey: this.#packKeys[this.#pack[entry] as number] as string,
			offset: record[9] as number,
			length: record[10] as number,
			rawLength: record[11] as number,
		};
	}

	#packNumber(packKey: string): number {
		// Blobs arrive pack by pack: the last pack's number answers most calls.
		if (packKey === this.#packKeys[this.#lastPack]) return this.#lastPack;
		let number = this.#packNumbers.get(packKey);
		if (number === undefined) {
			number = this.#packKeys.length;
			this.#packKeys.push(packKey);
			this.#packNumbers.set(packKey, number);
		}
		this.#lastPack = number;
		return number;
	}

	/** The live entry holding `id`, or -1. */
	#find(id: string): number {
		this.#probe.write(id, "hex");
		const entry = (this.#slots[this.#slotOfWords(this.#probeWords, 0)] as number) - 1;
		return entry >= 0 && this.#pack[entry] !== GONE ? entry : -1;
	}

	/** The slot that holds the ID at `words[at]`, or the free slot where it would go. */
	#slotOfWords(words: Uint32Array, at: number): number {
		const mask = this.#slots.length - 1;
		const prefix = this.#prefix;
		// IDs are keyed hashes: their first word is already uniformly spread.
		let slot = (words[at] as number) & mask;
		for (;;) {
			const entry = (this.#slots[slot] as number) - 1;
			if (entry < 0) return slot;
			const base = entry * PREFIX_WORDS;
			if (prefix[base] === words[at] && prefix[base + 1] === words[at + 1] && this.#sameId(entry, words, at)) return slot;
			slot = (slot + 1) & mask;
		}
	}

	/** Whether entry `entry` holds the full ID at `words[at]` (its prefix matched). */
	#sameId(entry: number, words: Uint32Array, at: number): boolean {
		const record = this.#records.read(entry);
		for (let w = PREFIX_WORDS; w < ID_WORDS; w++) if (record[w] !== words[at + w]) return false;
		return true;
	}

	#growEntries(wanted: number): void {
		const capacity = this.#pack.length;
		if (wanted <= capacity) return;
		const next = Math.max(wanted, Math.ceil(capacity * 1.5), 64);
		this.#prefix = grown(this.#prefix, new Uint32Array(next * PREFIX_WORDS));
		this.#pack = grown(this.#pack, new Uint32Array(next));
		this.#records.reserve(next);
	}

	/** Rehashes into a table with room for `wanted` entries at a load of at most three quarters. */
	#growSlots(wanted: number): void {
		let size = this.#slots.length;
		while (wanted * 4 > size * 3) size *= 2;
		if (size === this.#slots.length) return;
		this.#slots = new Uint32Array(size);
		const mask = size - 1;
		// Every entry's ID differs from the others: a rehash needs no comparison, only a free slot.
		for (let entry = 0; entry < this.#entries; entry++) {
			let slot = (this.#prefix[entry * PREFIX_WORDS] as number) & mask;
			while (this.#slots[slot] !== 0) slot = (slot + 1) & mask;
			this.#slots[slot] = entry + 1;
		}
	}
}

function idOf(record: Uint32Array): string {
	return Buffer.from(record.buffer, record.byteOffset, ID_WORDS * 4).toString("hex");
}

function grown<T extends Uint32Array | Float64Array | Uint8Array>(old: T, next: T): T {
	next.set(old as never);
	return next;
}

/** A pack's blob entries as loaded from an index object: raw IDs in one array, numbers in another. */
export interface PackedBlobs {
	readonly count: number;
	/** `count` raw IDs, eight words each. */
	readonly ids: Uint32Array;
	/** type, offset, length, rawLength of each entry, in the order of `ids`. */
	readonly numbers: Uint32Array;
	/** Entries that do not fit (an ID that is not 64 hex digits, a number past 32 bits), kept as they were. */
	readonly odd: [number, string, number, number, number][];
}

/** Whether `n` is an integer a 32-bit word holds (false for anything not a number, too). */
const fitsWord = (n: unknown) => (n as number) >>> 0 === n;

/** Packs the entries of one pack, so a loaded index object does not keep an array and a string per blob. */
export function packBlobs(blobs: readonly [number, string, number, number, number][]): PackedBlobs {
	const ids = new Uint32Array(blobs.length * ID_WORDS);
	const bytes = Buffer.from(ids.buffer);
	const numbers = new Uint32Array(blobs.length * 4);
	const odd: [number, string, number, number, number][] = [];
	let count = 0;
	for (const blob of blobs) {
		const [type, id, offset, length, rawLength] = blob;
		// 64 characters that all decode as hex (format 1 writes lowercase; a capital names the same bytes).
		const fits =
			fitsWord(type) &&
			fitsWord(offset) &&
			fitsWord(length) &&
			fitsWord(rawLength) &&
			typeof id === "string" &&
			id.length === 64 &&
			bytes.write(id, count * ID_WORDS * 4, "hex") === ID_WORDS * 4;
		if (!fits) {
			odd.push(blob);
			continue;
		}
		numbers[count * 4] = type;
		numbers[count * 4 + 1] = offset;
		numbers[count * 4 + 2] = length;
		numbers[count * 4 + 3] = rawLength;
		count++;
	}
	return { count, ids: ids.subarray(0, count * ID_WORDS), numbers: numbers.subarray(0, count * 4), odd };
}

/** Packed blobs as a catalog value: both arrays in base64, which JSON carries without escaping. */
export interface StoredPackedBlobs {
	count: number;
	ids: string;
	numbers: string;
	odd: [number, string, number, number, number][];
}

const bytesOf = (words: Uint32Array) => Buffer.from(words.buffer, words.byteOffset, words.byteLength);

export function storePackedBlobs(packed: PackedBlobs): StoredPackedBlobs {
	return {
		count: packed.count,
		ids: bytesOf(packed.ids).toString("base64"),
		numbers: bytesOf(packed.numbers).toString("base64"),
		odd: packed.odd,
	};
}

/** The packed blobs of a verified catalog value, or undefined when its arrays do not have the stated length. */
export function restorePackedBlobs(stored: StoredPackedBlobs): PackedBlobs | undefined {
	const ids = new Uint32Array(stored.count * ID_WORDS);
	const numbers = new Uint32Array(stored.count * 4);
	// Decoded straight into arrays of their own, aligned for 32-bit reads.
	const idBytes = bytesOf(ids).write(stored.ids, "base64");
	const numberBytes = bytesOf(numbers).write(stored.numbers, "base64");
	if (idBytes !== ids.byteLength || numberBytes !== numbers.byteLength) return undefined;
	if (Buffer.byteLength(stored.ids, "base64") !== idBytes || Buffer.byteLength(stored.numbers, "base64") !== numberBytes) {
		return undefined;
	}
	return { count: stored.count, ids, numbers, odd: stored.odd };
}
