import { closeSync, mkdtempSync, openSync, rmdirSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFully } from "../host/read-fully.js";

// What the blob table needs only on a hit (the full ID and the location), kept on disk for a large index so memory holds a prefix.

/** Words a record takes: the 32-byte ID, then type, offset, length and raw length. */
export const RECORD_WORDS = 12;
const RECORD_BYTES = RECORD_WORDS * 4;
/** Records gathered in memory before they go to the file in one write (768 KiB). */
const BUFFERED = 16_384;
const EMPTY = new Uint32Array(0);

/** Spill files are closed when their table is collected; their names were unlinked at creation. */
const files = new FinalizationRegistry<number>((fd) => {
	try {
		closeSync(fd);
	} catch {
		// already closed
	}
});

/**
 * Fixed-size records by entry number, appended in order and updated in place. In memory until
 * they outnumber `spillAbove`; then in an unlinked temporary file, which the page cache keeps
 * hot without counting against the process (a read is one `pread` on a hit).
 */
export class BlobRecords {
	#memory: Uint32Array | undefined = new Uint32Array(0);
	#fd: number | undefined;
	/** Records not yet written to the file: entries `[#bufferStart, #bufferStart + #buffered)`. Made at the spill: a table that stays in memory (every run's merged index) never needs it. */
	#buffer = EMPTY;
	#bufferStart = 0;
	#buffered = 0;
	#count = 0;
	readonly #scratch = new Uint32Array(RECORD_WORDS);
	/** The entry whose record `#scratch` holds as read from the file, or -1: a hit reads its record once. */
	#scratchEntry = -1;

	constructor(private readonly spillAbove: number) {}

	/** Whether the records live in a file (for tests and the bench). */
	get onDisk(): boolean {
		return this.#fd !== undefined;
	}

	/** Makes room for `capacity` records; past `spillAbove`, moves them to a file. */
	reserve(capacity: number): void {
		const memory = this.#memory;
		if (!memory) return;
		if (capacity > this.spillAbove && this.#spill()) return;
		if (capacity * RECORD_WORDS <= memory.length) return;
		const next = new Uint32Array(Math.max(capacity, Math.ceil((memory.length / RECORD_WORDS) * 1.5), 64) * RECORD_WORDS);
		next.set(memory);
		this.#memory = next;
	}

	/** Writes record `entry`: a new one is the next entry number, an old one is overwritten. */
	write(entry: number, id: Uint32Array, idAt: number, type: number, offset: number, length: number, rawLength: number): void {
		if (entry >= this.#count) {
			this.reserve(entry + 1);
			this.#count = entry + 1;
		}
		const record = this.#scratch;
		this.#scratchEntry = -1;
		for (let w = 0; w < 8; w++) record[w] = id[idAt + w] as number;
		record[8] = type;
		record[9] = offset;
		record[10] = length;
		record[11] = rawLength;
		this.#put(entry, record);
	}

	/** Record `entry`, in a view valid until the next call. */
	read(entry: number): Uint32Array {
		const memory = this.#memory;
		if (memory) return memory.subarray(entry * RECORD_WORDS, (entry + 1) * RECORD_WORDS);
		const inBuffer = entry - this.#bufferStart;
		if (inBuffer >= 0 && inBuffer < this.#buffered) {
			return this.#buffer.subarray(inBuffer * RECORD_WORDS, (inBuffer + 1) * RECORD_WORDS);
		}
		if (entry !== this.#scratchEntry) {
			readWords(this.#fd as number, this.#scratch, entry * RECORD_BYTES);
			this.#scratchEntry = entry;
		}
		return this.#scratch;
	}

	/** Records `[start, start + count)` in one read, for walks over the whole table. */
	readRange(start: number, count: number): Uint32Array {
		const memory = this.#memory;
		if (memory) return memory.subarray(start * RECORD_WORDS, (start + count) * RECORD_WORDS);
		const out = new Uint32Array(count * RECORD_WORDS);
		const fromFile = Math.max(0, Math.min(count, this.#bufferStart - start));
		if (fromFile > 0) readWords(this.#fd as number, out.subarray(0, fromFile * RECORD_WORDS), start * RECORD_BYTES);
		for (let entry = start + fromFile; entry < start + count; entry++) {
			out.set(this.read(entry), (entry - start) * RECORD_WORDS);
		}
		return out;
	}

	#put(entry: number, record: Uint32Array): void {
		const memory = this.#memory;
		if (memory) {
			memory.set(record, entry * RECORD_WORDS);
			return;
		}
		const inBuffer = entry - this.#bufferStart;
		if (inBuffer >= 0 && inBuffer < BUFFERED && inBuffer <= this.#buffered) {
			this.#buffer.set(record, inBuffer * RECORD_WORDS);
			if (inBuffer === this.#buffered) this.#buffered++;
			return;
		}
		if (inBuffer === BUFFERED && this.#buffered === BUFFERED) {
			this.#flush();
			this.#buffer.set(record, 0);
			this.#bufferStart = entry;
			this.#buffered = 1;
			return;
		}
		// An update of a record already in the file.
		writeFully(this.#fd as number, record, entry * RECORD_BYTES);
	}

	#flush(): void {
		writeFully(this.#fd as number, this.#buffer.subarray(0, this.#buffered * RECORD_WORDS), this.#bufferStart * RECORD_BYTES);
	}

	/** Moves the records to a new unlinked file; false (and still in memory) when no file can be made. */
	#spill(): boolean {
		let fd: number;
		try {
			const dir = mkdtempSync(join(tmpdir(), "holdfast-index-"));
			const path = join(dir, "records");
			fd = openSync(path, "w+", 0o600);
			unlinkSync(path);
			rmdirSync(dir);
		} catch {
			return false;
		}
		const memory = this.#memory as Uint32Array;
		// Whole buffers go to the file; the last part stays buffered, where appends continue.
		const kept = this.#count % BUFFERED;
		const inFile = this.#count - kept;
		writeFully(fd, memory.subarray(0, inFile * RECORD_WORDS), 0);
		this.#buffer = new Uint32Array(BUFFERED * RECORD_WORDS);
		this.#buffer.set(memory.subarray(inFile * RECORD_WORDS, this.#count * RECORD_WORDS));
		this.#bufferStart = inFile;
		this.#buffered = kept;
		this.#fd = fd;
		this.#memory = undefined;
		files.register(this, fd);
		return true;
	}
}

function writeFully(fd: number, words: Uint32Array, position: number): void {
	const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
	let done = 0;
	while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

function readWords(fd: number, into: Uint32Array, position: number): void {
	const bytes = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
	const done = readFully(fd, bytes, position);
	if (done < bytes.length) throw new Error(`internal: the blob index file ends at byte ${position + done}`);
}
