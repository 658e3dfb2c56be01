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
/** Slots `setPacked` reads ahead of its inserts: enough misses in flight at once, few enough to stay in cache. */
const WARM_BATCH = 64;
/** The pack number of an entry that was deleted: its slot stays, so its ID can come back in place. */
const GONE = 0xffffffff;
/** Past this many blobs, full IDs and locations go to a temporary file (about 48 bytes a blob). */
export const SPILL_ABOVE = 1 << 20;

/**
 * Where every blob is, in a few flat arrays instead of an object per blob. In memory, for each
 * blob: its pack number, and an open-addressing hash whose slots hold an entry number and the
 * first 4 bytes of its ID (12 to 20 bytes a blob in all); the full ID and the location are
 * records in `BlobRecords`, read on a hit, which also proves the hit (IDs that share their
 * first bytes are told apart there). Reads hand out fresh `BlobLocation` objects; IDs that are
 * not 64 hex digits live in a Map.
 */
export class BlobTable implements Iterable<[string, BlobLocation]> {
	#pack = new Uint32Array(0);
	readonly #records: BlobRecords;
	#entries = 0;
	#live = 0;
	/** What the warming pass of `setPacked` read, kept so the reads are not optimized away. */
	#touched = 0;
	/**
	 * Open-addressing hash slots, two words each: entry number + 1 (0 for a free slot) and the
	 * first word of the entry's ID. A probe compares IDs in the slot it reads, with no other
	 * cache miss at millions of blobs; a match is proved against the full ID in the record.
	 */
	#slots = new Uint32Array(32);
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

	/** Entries the table holds before it must grow (and copy every array). */
	get capacity(): number {
		return this.#pack.length;
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
		const entry = (this.#slots[this.#slotOfWords(words, at) * 2] as number) - 1;
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
		let entry = (this.#slots[slot * 2] as number) - 1;
		if (entry >= 0 && keep && this.#pack[entry] !== GONE && keep(this.#packKeys[this.#pack[entry] as number] as string)) {
			return;
		}
		if (entry < 0) {
			this.#growEntries(this.#entries + 1);
			entry = this.#entries++;
			this.#slots[slot * 2] = entry + 1;
			this.#slots[slot * 2 + 1] = words[at] as number;
			this.#live++;
			this.#pack[entry] = this.#packNumber(packKey);
			if (this.#entries * 8 > this.#slots.length * 3) this.#growSlots(this.#entries + 1);
		} else {
			if (this.#pack[entry] === GONE) this.#live++;
			this.#pack[entry] = this.#packNumber(packKey);
		}
		this.#records.write(entry, words, at, type === 1 ? 1 : 0, offset, length, rawLength);
	}

	/**
	 * `setAt` for each of a pack's packed blobs, in order. The slots they hash to are read in
	 * a first pass, a handful at a time: independent reads overlap their cache misses, so the
	 * inserts that follow find their slots in cache.
	 */
	setPacked(packed: PackedBlobs, packKey: string, keep?: (current: string) => boolean): void {
		const { count, ids, numbers } = packed;
		if (this.#entries + count > this.#pack.length) this.#growEntries(this.#entries + count);
		for (let start = 0; start < count; start += WARM_BATCH) {
			const end = Math.min(count, start + WARM_BATCH);
			// Growth rehashes first, so the slots read are the ones the inserts use.
			if ((this.#entries + end - start) * 4 > (this.#slots.length >>> 1) * 3) this.#growSlots(this.#entries + end - start);
			const slots = this.#slots;
			const mask = (slots.length >>> 1) - 1;
			let touched = 0;
			for (let i = start; i < end; i++) touched |= slots[((ids[i * ID_WORDS] as number) & mask) * 2] as number;
			this.#touched ^= touched;
			for (let i = start; i < end; i++) {
				const n = i * 4;
				this.setAt(
					ids,
					i * ID_WORDS,
					packKey,
					numbers[n] as number,
					numbers[n + 1] as number,
					numbers[n + 2] as number,
					numbers[n + 3] as number,
					keep,
				);
			}
		}
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
		const entry = (this.#slots[this.#slotOfWords(this.#probeWords, 0) * 2] as number) - 1;
		return entry >= 0 && this.#pack[entry] !== GONE ? entry : -1;
	}

	/** The slot that holds the ID at `words[at]`, or the free slot where it would go. */
	#slotOfWords(words: Uint32Array, at: number): number {
		const slots = this.#slots;
		const mask = (slots.length >>> 1) - 1;
		const first = words[at] as number;
		// IDs are keyed hashes: their first word is already uniformly spread.
		let slot = first & mask;
		for (;;) {
			const entry = (slots[slot * 2] as number) - 1;
			if (entry < 0) return slot;
			if (slots[slot * 2 + 1] === first && this.#sameId(entry, words, at)) return slot;
			slot = (slot + 1) & mask;
		}
	}

	/** Whether entry `entry` holds the full ID at `words[at]` (its first word matched). */
	#sameId(entry: number, words: Uint32Array, at: number): boolean {
		const record = this.#records.read(entry);
		for (let w = 1; w < ID_WORDS; w++) if (record[w] !== words[at + w]) return false;
		return true;
	}

	#growEntries(wanted: number): void {
		const capacity = this.#pack.length;
		if (wanted <= capacity) return;
		const next = Math.max(wanted, Math.ceil(capacity * 1.5), 64);
		this.#pack = grown(this.#pack, new Uint32Array(next));
		this.#records.reserve(next);
	}

	/** Rehashes into a table with room for `wanted` entries at a load of at most three quarters. */
	#growSlots(wanted: number): void {
		const old = this.#slots;
		let size = old.length >>> 1;
		while (wanted * 4 > size * 3) size *= 2;
		if (size * 2 === old.length) return;
		const slots = new Uint32Array(size * 2);
		const mask = size - 1;
		// Every entry's ID differs from the others: a rehash needs no comparison, only a free slot.
		for (let from = 0; from < old.length; from += 2) {
			if (old[from] === 0) continue;
			const first = old[from + 1] as number;
			let slot = first & mask;
			while (slots[slot * 2] !== 0) slot = (slot + 1) & mask;
			slots[slot * 2] = old[from] as number;
			slots[slot * 2 + 1] = first;
		}
		this.#slots = slots;
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

/**
 * The packed blobs of one index object as a catalog value, in 32-bit words of the machine's
 * byte order: the number of packs; each pack's entry count and the byte length of its odd
 * entries' JSON; then per pack its raw IDs, its numbers and its odd entries' JSON, padded to a word.
 */
export function encodePackedBlobs(packs: readonly PackedBlobs[]): Uint8Array {
	const odd = packs.map((pack) => (pack.odd.length > 0 ? Buffer.from(JSON.stringify(pack.odd)) : undefined));
	let words = 1 + packs.length * 2;
	packs.forEach((pack, i) => {
		words += pack.count * (ID_WORDS + 4) + Math.ceil((odd[i]?.length ?? 0) / 4);
	});
	const out = new Uint32Array(words);
	const bytes = new Uint8Array(out.buffer);
	out[0] = packs.length;
	let at = 1 + packs.length * 2;
	packs.forEach((pack, i) => {
		out[1 + i * 2] = pack.count;
		out[2 + i * 2] = odd[i]?.length ?? 0;
		out.set(pack.ids.subarray(0, pack.count * ID_WORDS), at);
		at += pack.count * ID_WORDS;
		out.set(pack.numbers.subarray(0, pack.count * 4), at);
		at += pack.count * 4;
		const json = odd[i];
		if (json) {
			bytes.set(json, at * 4);
			at += Math.ceil(json.length / 4);
		}
	});
	return bytes;
}

/**
 * The packed blobs of a verified catalog value, when it has the layout `encodePackedBlobs`
 * writes and each pack holds `blobCounts[i]` entries; otherwise undefined (read the object again).
 */
export function decodePackedBlobs(value: Uint8Array, blobCounts: readonly number[]): PackedBlobs[] | undefined {
	if (value.byteLength % 4 !== 0 || value.byteLength < 4) return undefined;
	// Aligned for 32-bit reads: a view when the bytes already are, else one copy.
	const words =
		value.byteOffset % 4 === 0
			? new Uint32Array(value.buffer, value.byteOffset, value.byteLength / 4)
			: new Uint32Array(value.slice().buffer);
	const packs = words[0] as number;
	if (packs !== blobCounts.length || words.length < 1 + packs * 2) return undefined;
	const out: PackedBlobs[] = [];
	let at = 1 + packs * 2;
	for (let i = 0; i < packs; i++) {
		const count = words[1 + i * 2] as number;
		const oddBytes = words[2 + i * 2] as number;
		const end = at + count * (ID_WORDS + 4) + Math.ceil(oddBytes / 4);
		if (end > words.length) return undefined;
		const ids = words.subarray(at, at + count * ID_WORDS);
		const numbers = words.subarray(at + count * ID_WORDS, at + count * (ID_WORDS + 4));
		let odd: [number, string, number, number, number][] = [];
		if (oddBytes > 0) {
			const start = words.byteOffset + (at + count * (ID_WORDS + 4)) * 4;
			try {
				odd = JSON.parse(Buffer.from(words.buffer, start, oddBytes).toString("utf8"));
			} catch {
				return undefined;
			}
			if (!Array.isArray(odd) || !odd.every((entry) => Array.isArray(entry) && entry.length === 5)) return undefined;
		}
		if (count + odd.length !== blobCounts[i]) return undefined;
		out.push({ count, ids, numbers, odd });
		at = end;
	}
	return at === words.length ? out : undefined;
}
