import type { BlobType } from "./format.js";
import type { BlobLocation } from "./index-file.js";

/** A blob ID as format 1 writes it: a 32-byte keyed hash in lowercase hex (a loop: a RegExp costs more per call). */
const HEX_ID = {
	test(id: string): boolean {
		if (id.length !== 64) return false;
		for (let i = 0; i < 64; i++) {
			const c = id.charCodeAt(i);
			if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
		}
		return true;
	},
};
const ID_BYTES = 32;
/** The pack number of an entry that was deleted: its slot stays, so its ID can come back in place. */
const GONE = 0xffffffff;

/**
 * Where every blob is, in a few flat arrays instead of an object per blob: IDs as 32 raw bytes
 * in one buffer, pack numbers, offsets and lengths in typed arrays, and an open-addressing
 * hash over the IDs. About 60 bytes a blob, where a Map of location objects takes several
 * hundred, and no garbage for the collector to walk: ten million blobs fit in memory.
 * Reads hand out fresh `BlobLocation` objects; IDs that are not 64 hex digits live in a Map.
 */
export class BlobTable implements Iterable<[string, BlobLocation]> {
	#ids = Buffer.alloc(0);
	#pack = new Uint32Array(0);
	#offset = new Float64Array(0);
	#length = new Uint32Array(0);
	#rawLength = new Uint32Array(0);
	#tree = new Uint8Array(0);
	#entries = 0;
	#live = 0;
	/** Open-addressing hash slots: entry number + 1, or 0 for a free slot. */
	#slots = new Uint32Array(16);
	readonly #packKeys: string[] = [];
	readonly #packNumbers = new Map<string, number>();
	#lastPack = 0;
	readonly #odd = new Map<string, BlobLocation>();
	/** Scratch room for the ID being looked up. */
	readonly #probe = Buffer.alloc(ID_BYTES);

	get size(): number {
		return this.#live + this.#odd.size;
	}

	/** Makes room for `count` more blobs at once, so a large load does not grow the arrays step by step. */
	reserve(count: number): void {
		this.#growEntries(this.#entries + count);
		this.#growSlots(this.#entries + count);
	}

	get(id: string): BlobLocation | undefined {
		if (!HEX_ID.test(id)) return this.#odd.get(id);
		const entry = this.#find(id);
		return entry < 0 ? undefined : this.#location(entry);
	}

	has(id: string): boolean {
		if (!HEX_ID.test(id)) return this.#odd.has(id);
		return this.#find(id) >= 0;
	}

	set(id: string, location: BlobLocation): this {
		if (!HEX_ID.test(id)) {
			this.#odd.set(id, { ...location });
			return this;
		}
		this.#probe.write(id, "hex");
		this.setAt(
			this.#probe,
			0,
			location.packKey,
			location.type === "tree" ? 1 : 0,
			location.offset,
			location.length,
			location.rawLength,
		);
		return this;
	}

	/** The pack that holds the blob whose raw ID is `bytes[at, at + 32)`, if any. */
	packKeyAt(bytes: Buffer, at: number): string | undefined {
		const entry = (this.#slots[this.#slotOfBytes(bytes, at)] as number) - 1;
		return entry >= 0 && this.#pack[entry] !== GONE ? this.#packKeys[this.#pack[entry] as number] : undefined;
	}

	/** `set` for a raw 32-byte ID at `bytes[at]`, without going through hex. */
	setAt(bytes: Buffer, at: number, packKey: string, type: number, offset: number, length: number, rawLength: number): void {
		const slot = this.#slotOfBytes(bytes, at);
		let entry = (this.#slots[slot] as number) - 1;
		if (entry < 0) {
			this.#growEntries(this.#entries + 1);
			entry = this.#entries++;
			bytes.copy(this.#ids, entry * ID_BYTES, at, at + ID_BYTES);
			this.#slots[slot] = entry + 1;
			this.#live++;
			this.#pack[entry] = this.#packNumber(packKey);
			if (this.#entries * 4 > this.#slots.length * 3) this.#growSlots(this.#entries + 1);
		} else {
			if (this.#pack[entry] === GONE) this.#live++;
			this.#pack[entry] = this.#packNumber(packKey);
		}
		this.#offset[entry] = offset;
		this.#length[entry] = length;
		this.#rawLength[entry] = rawLength;
		this.#tree[entry] = type === 1 ? 1 : 0;
	}

	delete(id: string): boolean {
		if (!HEX_ID.test(id)) return this.#odd.delete(id);
		const entry = this.#find(id);
		if (entry < 0) return false;
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

	*entries(): IterableIterator<[string, BlobLocation]> {
		for (let entry = 0; entry < this.#entries; entry++) {
			if (this.#pack[entry] === GONE) continue;
			yield [this.#ids.toString("hex", entry * ID_BYTES, (entry + 1) * ID_BYTES), this.#location(entry)];
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

	#location(entry: number): BlobLocation {
		return {
			type: (this.#tree[entry] === 1 ? "tree" : "data") as BlobType,
			packKey: this.#packKeys[this.#pack[entry] as number] as string,
			offset: this.#offset[entry] as number,
			length: this.#length[entry] as number,
			rawLength: this.#rawLength[entry] as number,
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
		const entry = (this.#slots[this.#slotOf(id)] as number) - 1;
		return entry >= 0 && this.#pack[entry] !== GONE ? entry : -1;
	}

	/** The slot that holds `id`, or the free slot where it would go; leaves the ID's bytes in `#probe`. */
	#slotOf(id: string): number {
		this.#probe.write(id, "hex");
		return this.#slotOfBytes(this.#probe, 0);
	}

	#slotOfBytes(bytes: Buffer, at: number): number {
		const mask = this.#slots.length - 1;
		// IDs are keyed hashes: their first bytes are already uniformly spread.
		let slot = bytes.readUInt32LE(at) & mask;
		for (;;) {
			const entry = (this.#slots[slot] as number) - 1;
			if (entry < 0 || this.#ids.compare(bytes, at, at + ID_BYTES, entry * ID_BYTES, (entry + 1) * ID_BYTES) === 0) {
				return slot;
			}
			slot = (slot + 1) & mask;
		}
	}

	#growEntries(wanted: number): void {
		const capacity = this.#pack.length;
		if (wanted <= capacity) return;
		const next = Math.max(wanted, Math.ceil(capacity * 1.5), 64);
		const ids = Buffer.allocUnsafe(next * ID_BYTES);
		this.#ids.copy(ids, 0, 0, this.#entries * ID_BYTES);
		this.#ids = ids;
		this.#pack = grown(this.#pack, new Uint32Array(next));
		this.#offset = grown(this.#offset, new Float64Array(next));
		this.#length = grown(this.#length, new Uint32Array(next));
		this.#rawLength = grown(this.#rawLength, new Uint32Array(next));
		this.#tree = grown(this.#tree, new Uint8Array(next));
	}

	/** Rehashes into a table with room for `wanted` entries at a load of at most three quarters. */
	#growSlots(wanted: number): void {
		let size = this.#slots.length;
		while (wanted * 4 > size * 3) size *= 2;
		if (size === this.#slots.length) return;
		this.#slots = new Uint32Array(size);
		for (let entry = 0; entry < this.#entries; entry++) {
			this.#slots[this.#slotOfBytes(this.#ids, entry * ID_BYTES)] = entry + 1;
		}
	}
}

function grown<T extends Uint32Array | Float64Array | Uint8Array>(old: T, next: T): T {
	next.set(old as never);
	return next;
}

/** A pack's blob entries as loaded from an index object: raw IDs in one buffer, numbers in one array. */
export interface PackedBlobs {
	readonly count: number;
	/** `count` raw 32-byte IDs. */
	readonly ids: Buffer;
	/** type, offset, length, rawLength for each entry, in the order of `ids`. */
	readonly numbers: Float64Array;
	/** Entries whose ID is not 64 hex digits, kept as they were. */
	readonly odd: [number, string, number, number, number][];
}

/** Packs the entries of one pack, so a loaded index object does not keep an array and a string per blob. */
export function packBlobs(blobs: readonly [number, string, number, number, number][]): PackedBlobs {
	const ids = Buffer.allocUnsafe(blobs.length * ID_BYTES);
	const numbers = new Float64Array(blobs.length * 4);
	const odd: [number, string, number, number, number][] = [];
	let count = 0;
	for (const blob of blobs) {
		const [type, id, offset, length, rawLength] = blob;
		// 64 characters that all decode as hex (case aside, which names the same bytes).
		if (typeof id !== "string" || id.length !== 64 || ids.write(id, count * ID_BYTES, "hex") !== ID_BYTES) {
			odd.push(blob);
			continue;
		}
		numbers[count * 4] = type;
		numbers[count * 4 + 1] = offset;
		numbers[count * 4 + 2] = length;
		numbers[count * 4 + 3] = rawLength;
		count++;
	}
	return { count, ids: ids.subarray(0, count * ID_BYTES), numbers: numbers.subarray(0, count * 4), odd };
}

/** Packed blobs as a catalog value: both arrays in base64, which JSON carries without escaping. */
export interface StoredPackedBlobs {
	count: number;
	ids: string;
	numbers: string;
	odd: [number, string, number, number, number][];
}

export function storePackedBlobs(packed: PackedBlobs): StoredPackedBlobs {
	const numbers = Buffer.from(packed.numbers.buffer, packed.numbers.byteOffset, packed.numbers.byteLength);
	return { count: packed.count, ids: packed.ids.toString("base64"), numbers: numbers.toString("base64"), odd: packed.odd };
}

/** The packed blobs of a verified catalog value, or undefined when its arrays do not have the stated length. */
export function restorePackedBlobs(stored: StoredPackedBlobs): PackedBlobs | undefined {
	const ids = Buffer.from(stored.ids, "base64");
	const bytes = Buffer.from(stored.numbers, "base64");
	if (ids.length !== stored.count * ID_BYTES || bytes.length !== stored.count * 4 * 8) return undefined;
	// Copied into an array of its own: a Float64Array needs an aligned offset.
	const numbers = new Float64Array(stored.count * 4);
	new Uint8Array(numbers.buffer).set(bytes);
	return { count: stored.count, ids, numbers, odd: stored.odd };
}
