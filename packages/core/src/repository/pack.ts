import { HoldfastError } from "../host/errors.js";
import type { RepositoryKeys } from "./crypto.js";
import { BLOB_TYPE, type BlobType } from "./format.js";

/** Where one blob sits inside a pack. Lengths are of the sealed bytes in the pack. */
export interface PackedBlob {
	readonly type: BlobType;
	readonly id: string;
	readonly offset: number;
	readonly length: number;
	/** Plaintext length (after decompression), for sizes and restore planning. */
	readonly rawLength: number;
}

const ENTRY = 1 + 32 + 4 + 4 + 4;

/**
 * A pack: sealed blobs back to back, then the sealed header listing them, then the
 * header's sealed length as 4 bytes little-endian. The header lets the index be rebuilt
 * from packs alone; the pack's key is the SHA-256 of all its bytes. Blobs are copied into
 * one buffer of shared memory as they arrive — or sealed straight into it by a worker, in a
 * reserved region — so finishing the pack copies nothing again and a worker hashes it where
 * it lies.
 */
export class PackBuilder {
	readonly #blobs: PackedBlob[] = [];
	#buffer: Buffer;
	#size = 0;
	/** Regions workers are sealing into, in the order they were reserved; blobs join the pack in that order. */
	readonly #reserved: Reservation[] = [];
	/** Settles when the last reservation is committed. */
	#drained: { promise: Promise<void>; resolve: () => void } | undefined;

	/** `buffer` (shared memory, reused from an earlier pack or fresh) holds the blobs as they come. */
	constructor(buffer: Buffer = sharedBuffer(0)) {
		this.#buffer = buffer;
	}

	/** The buffer, for reuse by a later pack once this one is uploaded. */
	get buffer(): Buffer {
		return this.#buffer;
	}

	get size(): number {
		return this.#size;
	}

	get count(): number {
		return this.#blobs.length;
	}

	/** Whether `length` more bytes fit without moving what is there. */
	fits(length: number): boolean {
		return this.#size + length <= this.#buffer.length;
	}

	/** Where the next reservation would start: past every region still being sealed. */
	get #frontier(): number {
		const last = this.#reserved.at(-1);
		return last ? last.offset + last.capacity : this.#size;
	}

	/** Bytes free for a reservation. */
	get room(): number {
		return this.#buffer.length - this.#frontier;
	}

	/** Bytes reserved for regions still being sealed (their worst case). */
	get pendingBytes(): number {
		const first = this.#reserved[0];
		return first ? this.#frontier - first.offset : 0;
	}

	/** Regions reserved and not yet committed. */
	get reservations(): number {
		return this.#reserved.length;
	}

	/**
	 * Reserves `capacity` bytes for a worker to seal blobs into, after everything already
	 * added or reserved; undefined when they do not fit the buffer (the buffer cannot grow
	 * while workers write into it).
	 */
	reserve(capacity: number): number | undefined {
		const offset = this.#frontier;
		if (offset + capacity > this.#buffer.length) return undefined;
		this.#reserved.push({ offset, capacity, blobs: undefined });
		return offset;
	}

	/**
	 * The blobs sealed into the region reserved at `offset`, back to back from its start, in
	 * order (none when sealing failed); a blob with `at` starts there, leaving out what was
	 * sealed before it. Blobs join the pack in the order regions were
	 * reserved: a region committed before an earlier one waits for it. A region's unused
	 * tail leaves no hole: the blobs after it are moved down within the buffer.
	 */
	commit(offset: number, blobs: readonly ReservedBlob[]): void {
		const reservation = this.#reserved.find((r) => r.offset === offset && r.blobs === undefined);
		if (!reservation) throw new Error(`pack: no open reservation at ${offset}`);
		reservation.blobs = blobs;
		while (this.#reserved[0]?.blobs !== undefined) {
			const done = this.#reserved.shift() as Reservation;
			let from = done.offset;
			for (const blob of done.blobs as readonly ReservedBlob[]) {
				if (blob.at !== undefined) from = done.offset + blob.at;
				if (from !== this.#size) this.#buffer.copyWithin(this.#size, from, from + blob.length);
				this.#blobs.push({ type: blob.type, id: blob.id, offset: this.#size, length: blob.length, rawLength: blob.rawLength });
				this.#size += blob.length;
				from += blob.length;
			}
		}
		if (this.#reserved.length === 0) this.#drained?.resolve();
	}

	/** Waits until every reserved region is committed: only then may the pack be finished. */
	drained(): Promise<void> {
		if (this.#reserved.length === 0) return Promise.resolve();
		if (!this.#drained) {
			let resolve!: () => void;
			const promise = new Promise<void>((done) => (resolve = done));
			this.#drained = {
				promise,
				resolve: () => {
					this.#drained = undefined;
					resolve();
				},
			};
		}
		return this.#drained.promise;
	}

	add(type: BlobType, id: string, sealed: Uint8Array, rawLength: number): void {
		if (this.#reserved.length > 0) throw new Error("pack: a blob added while workers seal into it");
		this.#reserve(sealed.length);
		this.#buffer.set(sealed, this.#size);
		this.#blobs.push({ type, id, offset: this.#size, length: sealed.length, rawLength });
		this.#size += sealed.length;
	}

	#reserve(length: number): void {
		if (this.#size + length <= this.#buffer.length) return;
		const grown = sharedBuffer(Math.max(this.#size + length, this.#buffer.length * 2));
		this.#buffer.copy(grown, 0, 0, this.#size);
		this.#buffer = grown;
	}

	async finish(
		keys: RepositoryKeys,
		digest: (bytes: Buffer) => Promise<string>,
	): Promise<{ hash: string; bytes: Buffer; blobs: PackedBlob[] }> {
		if (this.#reserved.length > 0) throw new Error("pack: finished while workers seal into it");
		const header = Buffer.alloc(this.#blobs.length * ENTRY);
		this.#blobs.forEach((blob, i) => {
			const at = i * ENTRY;
			header.writeUInt8(BLOB_TYPE[blob.type], at);
			Buffer.from(blob.id, "hex").copy(header, at + 1);
			header.writeUInt32LE(blob.offset, at + 33);
			header.writeUInt32LE(blob.length, at + 37);
			header.writeUInt32LE(blob.rawLength, at + 41);
		});
		const sealedHeader = keys.seal(header);
		this.#reserve(sealedHeader.length + 4);
		sealedHeader.copy(this.#buffer, this.#size);
		this.#buffer.writeUInt32LE(sealedHeader.length, this.#size + sealedHeader.length);
		const bytes = this.#buffer.subarray(0, this.#size + sealedHeader.length + 4);
		return { hash: await digest(bytes), bytes, blobs: this.#blobs };
	}
}

/** A blob a worker sealed into a reserved region: its sealed length in the region. */
export interface ReservedBlob {
	readonly type: BlobType;
	readonly id: string;
	readonly length: number;
	readonly rawLength: number;
	/** Where it starts in the region, when blobs sealed before it were dropped (known after all); else right after the previous one. */
	readonly at?: number;
}

interface Reservation {
	readonly offset: number;
	readonly capacity: number;
	/** Set once sealed. */
	blobs: readonly ReservedBlob[] | undefined;
}

/** Zeroed shared memory is mapped lazily: the pages a pack never fills are never touched. */
export function sharedBuffer(size: number): Buffer {
	return Buffer.from(new SharedArrayBuffer(size));
}

/** Reads the blob list out of a whole pack (index rebuild, check). */
export async function readPackHeader(keys: RepositoryKeys, pack: Buffer, what: string): Promise<PackedBlob[]> {
	if (pack.length < 4) throw new HoldfastError("CORRUPT", `${what}: too short for a pack`);
	const headerLength = pack.readUInt32LE(pack.length - 4);
	if (headerLength + 4 > pack.length) throw new HoldfastError("CORRUPT", `${what}: pack header length out of range`);
	const header = keys.open(pack.subarray(pack.length - 4 - headerLength, pack.length - 4), `${what} header`);
	if (header.length % ENTRY !== 0) throw new HoldfastError("CORRUPT", `${what}: pack header has a partial entry`);
	const blobs: PackedBlob[] = [];
	for (let at = 0; at < header.length; at += ENTRY) {
		const typeByte = header.readUInt8(at);
		blobs.push({
			type: typeByte === BLOB_TYPE.tree ? "tree" : "data",
			id: header.subarray(at + 1, at + 33).toString("hex"),
			offset: header.readUInt32LE(at + 33),
			length: header.readUInt32LE(at + 37),
			rawLength: header.readUInt32LE(at + 41),
		});
	}
	return blobs;
}
