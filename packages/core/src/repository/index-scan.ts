import type { PackedBlobs } from "./blob-table.js";
import type { IndexFile } from "./index-file.js";

// A scan of an index object's JSON that writes blob entries straight into typed arrays: no array and no string per blob.

/** Bytes of the shortest entry as writers produce it, `[0,"<64 hex>",0,0,0]` and a comma: bounds the entries a text can hold. */
const SHORTEST_ENTRY = 76;
const KEY = Buffer.from('"blobs":[');
const NAME = Buffer.from('"blobs"');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const ZERO = 0x30;

/** The value of each lowercase hex digit, -1 for every other byte (an uppercase digit takes the general parse). */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[ZERO + c] = c;
for (let c = 0; c < 6; c++) HEX[0x61 + c] = 10 + c;

/** An index object with each pack's blobs already packed: `file`'s packs carry an empty `blobs`. */
export interface ScannedIndex {
	file: IndexFile;
	packed: PackedBlobs[];
}

/**
 * Parses a verified index object's JSON the way `JSON.parse` and `packBlobs` would, when every
 * blob entry has the form writers produce (`[type,"<64 lowercase hex>",offset,length,rawLength]`,
 * plain integers below 2^32). Anything else (spaces, other digits, a field named `blobs`
 * elsewhere) returns undefined, and the caller parses the general way: the result never differs.
 */
export function scanIndexJson(text: Buffer): ScannedIndex | undefined {
	const scanner = new EntryScanner(text, Math.floor(text.length / SHORTEST_ENTRY) + 1);
	/** Where each `blobs` array starts and ends in the entry arrays, in the order of the text. */
	const arrays: number[] = [];
	const head: Buffer[] = [];
	let kept = 0;
	let at = text.indexOf(QUOTE);
	while (at >= 0) {
		if (text.compare(KEY, 0, KEY.length, at, at + KEY.length) === 0) {
			// The array's place in the head is its number in the text: `"blobs":[7]` names the eighth.
			head.push(text.subarray(kept, at + KEY.length), Buffer.from(`${arrays.length / 2}`));
			const start = scanner.entries;
			const close = scanner.scanArray(at + KEY.length);
			if (close < 0) return undefined;
			arrays.push(start, scanner.entries);
			kept = close;
			at = text.indexOf(QUOTE, close);
			continue;
		}
		const close = endOfString(text, at);
		if (close < 0) return undefined;
		at = text.indexOf(QUOTE, close + 1);
	}
	head.push(text.subarray(kept));
	const headText = Buffer.concat(head);
	// A `"blobs"` not scanned (a key spelled with a space, a second key, a value) could win in JSON.parse: the general parse decides.
	let named = 0;
	for (let at = headText.indexOf(NAME); at >= 0; at = headText.indexOf(NAME, at + 1)) named++;
	if (named !== arrays.length / 2) return undefined;
	let file: IndexFile;
	try {
		file = JSON.parse(headText.toString("utf8")) as IndexFile;
	} catch {
		return undefined;
	}
	if (typeof file !== "object" || file === null || !Array.isArray(file.packs)) return undefined;
	if (file.packs.length !== arrays.length / 2) return undefined;
	const ids = new Uint32Array(scanner.ids.buffer);
	const used = new Uint8Array(file.packs.length);
	const packed: PackedBlobs[] = [];
	for (const pack of file.packs as unknown[]) {
		// Each pack names exactly one scanned array, and no array is named twice or outside a pack.
		const blobs = (pack as { blobs?: unknown } | null)?.blobs;
		if (!Array.isArray(blobs) || blobs.length !== 1 || typeof blobs[0] !== "number") return undefined;
		const n = blobs[0];
		if (!Number.isInteger(n) || n < 0 || n >= used.length || used[n]) return undefined;
		used[n] = 1;
		const from = arrays[n * 2] as number;
		const to = arrays[n * 2 + 1] as number;
		(pack as { blobs: unknown[] }).blobs = [];
		packed.push({
			count: to - from,
			ids: ids.subarray(from * 8, to * 8),
			numbers: scanner.numbers.subarray(from * 4, to * 4),
			odd: [],
		});
	}
	return { file, packed };
}

/** The index of the quote that ends the string opening at `at`, or -1. */
function endOfString(text: Buffer, at: number): number {
	let close = text.indexOf(QUOTE, at + 1);
	while (close >= 0) {
		let slashes = 0;
		while (text[close - 1 - slashes] === BACKSLASH) slashes++;
		if (slashes % 2 === 0) return close;
		close = text.indexOf(QUOTE, close + 1);
	}
	return -1;
}

/** Blob entries read from the text into one array of raw IDs and one of numbers, in the order read. */
class EntryScanner {
	readonly ids: Uint8Array;
	readonly numbers: Uint32Array;
	entries = 0;

	constructor(
		private readonly text: Buffer,
		capacity: number,
	) {
		this.ids = new Uint8Array(capacity * 32);
		this.numbers = new Uint32Array(capacity * 4);
	}

	/** Reads the entries of one `blobs` array from `at` (just past its `[`); the index of its `]`, or -1 when not in the writers' form. */
	scanArray(at: number): number {
		const { text, ids } = this;
		let p = at;
		if (text[p] === CLOSE) return p;
		for (;;) {
			if (text[p++] !== OPEN) return -1;
			const n = this.entries * 4;
			p = this.#number(p, n);
			if (p < 0 || text[p++] !== COMMA || text[p++] !== QUOTE) return -1;
			// 32 bytes of ID from 64 lowercase hex digits.
			let o = this.entries * 32;
			for (let i = 0; i < 32; i++) {
				const high = HEX[text[p++] as number] as number;
				const low = HEX[text[p++] as number] as number;
				if ((high | low) < 0) return -1;
				ids[o++] = (high << 4) | low;
			}
			if (text[p++] !== QUOTE || text[p++] !== COMMA) return -1;
			p = this.#number(p, n + 1);
			if (p < 0 || text[p++] !== COMMA) return -1;
			p = this.#number(p, n + 2);
			if (p < 0 || text[p++] !== COMMA) return -1;
			p = this.#number(p, n + 3);
			if (p < 0 || text[p++] !== CLOSE) return -1;
			this.entries++;
			if (text[p] === CLOSE) return p;
			if (text[p++] !== COMMA) return -1;
		}
	}

	/** Reads a JSON integer in [0, 2^32) at `at` into `numbers[slot]`; the index after it, or -1. */
	#number(at: number, slot: number): number {
		const text = this.text;
		let p = at;
		let value = (text[p] as number) - ZERO;
		if (!(value >= 0 && value <= 9)) return -1;
		p++;
		if (value !== 0) {
			for (let digits = 1; ; digits++) {
				const d = (text[p] as number) - ZERO;
				if (!(d >= 0 && d <= 9)) break;
				if (digits === 10) return -1;
				value = value * 10 + d;
				p++;
			}
			if (value > 0xffffffff) return -1;
		}
		const after = text[p];
		// A fraction or an exponent may still be an integer to JSON.parse: left to the general parse.
		if (after === 0x2e || after === 0x65 || after === 0x45) return -1;
		this.numbers[slot] = value;
		return p;
	}
}
