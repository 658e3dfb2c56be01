import { HoldfastError } from "../host/errors.js";
import type { RepositoryKeys } from "./crypto.js";
import { BLOB_TYPE, type BlobType } from "./format.js";
import type { PackFile, PackFileDigests } from "./pack-file.js";
import type { StagingBuffers } from "./staging-buffers.js";

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
 * from packs alone; the pack's key is the SHA-256 of all its bytes. The pack is assembled in
 * a temporary file (`PackFile`) as its blobs arrive: a worker seals a batch into a staging
 * buffer reserved for it, and once the batches before it are in, its blobs are written to
 * the file where the pack has got to. Memory holds the batches being sealed, never whole packs.
 */
export class PackBuilder {
	readonly #blobs: PackedBlob[] = [];
	#size = 0;
	/** Regions workers are sealing into, in the order they were reserved; blobs join the pack in that order. */
	readonly #reserved: Reservation[] = [];
	/** Where the next reservation starts: the pack's end plus every region still being sealed. */
	#frontier = 0;
	/** Settles when the last reservation is committed. */
	#drained: { promise: Promise<void>; resolve: () => void } | undefined;

	constructor(
		/** The file the pack is written to; the builder's from now on until `finish`. */
		readonly file: PackFile,
		private readonly staging: StagingBuffers,
		/** Bytes the pack may reach, its blobs and those reserved for. */
		readonly capacity: number,
	) {}

	get size(): number {
		return this.#size;
	}

	get count(): number {
		return this.#blobs.length;
	}

	/** Whether `length` more bytes fit. */
	fits(length: number): boolean {
		return this.#size + length <= this.capacity;
	}

	/** Bytes free for a reservation. */
	get room(): number {
		return this.capacity - this.#frontier;
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
	 * added or reserved; undefined when they do not fit the pack. The worker seals into
	 * `staging` (at least `capacity` bytes, from `StagingBuffers`) from its start, and
	 * `staged(offset)` finds it again; it goes back once its blobs are in the file.
	 */
	reserve(capacity: number, staging: Buffer): number | undefined {
		const offset = this.#frontier;
		if (offset + capacity > this.capacity || staging.length < capacity) return undefined;
		this.#reserved.push({ offset, capacity, blobs: undefined, staging });
		this.#frontier += capacity;
		return offset;
	}

	/** The shared memory the region reserved at `offset` is sealed into, from its first byte. */
	staged(offset: number): Buffer {
		const reservation = this.#reserved.find((r) => r.offset === offset && r.blobs === undefined);
		if (!reservation) throw new Error(`pack: no open reservation at ${offset}`);
		return reservation.staging;
	}

	/**
	 * The blobs sealed into the region reserved at `offset`, back to back from its start, in
	 * order (none when sealing failed); a blob with `at` starts there, leaving out what was
	 * sealed before it. Blobs join the pack in the order regions were reserved: a region
	 * committed before an earlier one waits for it. Each run of adjacent blobs is one write.
	 */
	commit(offset: number, blobs: readonly ReservedBlob[]): void {
		const reservation = this.#reserved.find((r) => r.offset === offset && r.blobs === undefined);
		if (!reservation) throw new Error(`pack: no open reservation at ${offset}`);
		reservation.blobs = blobs;
		while (this.#reserved[0]?.blobs !== undefined) {
			const done = this.#reserved.shift() as Reservation;
			const writes: Promise<void>[] = [];
			let from = 0;
			let run: { from: number; to: number; position: number } | undefined;
			for (const blob of done.blobs as readonly ReservedBlob[]) {
				if (blob.at !== undefined) from = blob.at;
				if (run && run.to !== from) {
					writes.push(this.file.write(done.staging.subarray(run.from, run.to), run.position));
					run = undefined;
				}
				run ??= { from, to: from, position: this.#size };
				run.to += blob.length;
				this.#blobs.push({ type: blob.type, id: blob.id, offset: this.#size, length: blob.length, rawLength: blob.rawLength });
				this.#size += blob.length;
				from += blob.length;
			}
			if (run) writes.push(this.file.write(done.staging.subarray(run.from, run.to), run.position));
			// The staging buffer is reused once its bytes are in the file (a failed write fails `finish`).
			void Promise.allSettled(writes).then(() => this.staging.give(done.staging));
		}
		this.#frontier = this.#reserved[0] ? this.#frontier : this.#size;
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

	/** Appends a sealed blob; `sealed` must stay unchanged until the pack is finished. */
	add(type: BlobType, id: string, sealed: Uint8Array, rawLength: number): void {
		if (this.#reserved.length > 0) throw new Error("pack: a blob added while workers seal into it");
		void this.file.write(sealed, this.#size).catch(() => undefined);
		this.#blobs.push({ type, id, offset: this.#size, length: sealed.length, rawLength });
		this.#size += sealed.length;
		this.#frontier = this.#size;
	}

	/**
	 * Writes the header and waits for every write; `digest` hashes the file's `size` bytes
	 * (on a worker). The file is left for the caller to upload and remove.
	 */
	async finish(
		keys: RepositoryKeys,
		digest: (path: string, size: number) => Promise<PackFileDigests>,
	): Promise<{ hash: string; md5?: string; size: number; blobs: PackedBlob[] }> {
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
		const trailer = Buffer.alloc(sealedHeader.length + 4);
		sealedHeader.copy(trailer);
		trailer.writeUInt32LE(sealedHeader.length, sealedHeader.length);
		void this.file.write(trailer, this.#size).catch(() => undefined);
		const size = this.#size + trailer.length;
		await this.file.settled();
		const { sha256, md5 } = await digest(this.file.path, size);
		return { hash: sha256, ...(md5 ? { md5 } : {}), size, blobs: this.#blobs };
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
	/** Where a worker seals the region's blobs, from its first byte. */
	readonly staging: Buffer;
}

/** Zeroed shared memory is mapped lazily: pages never written are never touched. */
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
