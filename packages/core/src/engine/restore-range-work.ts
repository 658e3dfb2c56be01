import type { BlobWork, Regions } from "../repository/blob-work.js";
import { gatherForTransfer } from "../repository/plaintext-transfer.js";
import { type FileMeta, TempFile } from "./restore-writer.js";

// Restore's share of the blob pool's threads: a read range opened, and the files inside it written there.

/** A file whose blobs all lie in one read range: written whole by the thread that opens them. */
export interface WholeFile {
	readonly dir: Uint8Array;
	readonly name: Uint8Array;
	readonly path: Uint8Array;
	/** The path holds a folder that goes first (--overwrite). */
	readonly removeFirst: boolean;
	readonly size: number;
	readonly meta: FileMeta;
	/** Pairs of [index of a blob in the range, offset in the file]. */
	readonly writes: readonly number[];
}

/** Files to write while a range is open, and which plaintexts still go back (for files spanning ranges). */
export interface RangeFiles {
	readonly files: readonly WholeFile[];
	/** 1 where the blob's plaintext is wanted back. */
	readonly keep: Uint8Array;
	/** Set owners too (only root may). */
	readonly chown: boolean;
}

export interface RestoreRangeRequest {
	readonly data: Uint8Array;
	readonly regions: Regions;
	readonly ids: readonly string[];
	/** Plaintext length of each blob, as the index says. */
	readonly rawLengths: Uint32Array;
	readonly packKey: string;
	readonly files: RangeFiles;
}

/** Why a file could not be written, as the system said it (errno survives the hop between threads). */
export interface FileFailure {
	readonly index: number;
	readonly message: string;
	readonly errno?: number;
	readonly code?: string;
}

export interface RangeRestored {
	/** The plaintexts asked back; the others are not sent. */
	readonly blobs: readonly (Uint8Array | undefined)[];
	/** The first `written` files are in place; on a failure it names the next, and none after it was begun. */
	readonly written: number;
	readonly failure?: FileFailure;
}

/**
 * Opens and verifies every blob of the range first (a corrupt blob fails it before any file
 * is touched), then writes each whole file with synchronous calls: on a worker thread they
 * cost no hop to the libuv pool, and the main thread never waits on them. Only the
 * plaintexts asked back are gathered for the trip; the others are never copied.
 */
export function restoreRange(work: BlobWork, request: RestoreRangeRequest): { result: RangeRestored; transfer: ArrayBuffer[] } {
	const { ids, packKey, rawLengths, files } = request;
	const plains = work.openRange(request.data, request.regions, ids, packKey, rawLengths);
	const outcome = writeWholeFiles(plains, files.files, files.chown);
	const { blobs, transfer } = gatherForTransfer(plains, files.keep);
	return { result: { ...outcome, blobs }, transfer };
}

/** Writes the files in order and stops at the first that fails, its temporary file removed. */
export function writeWholeFiles(
	blobs: readonly Uint8Array[],
	files: readonly WholeFile[],
	chown: boolean,
): Pick<RangeRestored, "written" | "failure"> {
	for (let index = 0; index < files.length; index++) {
		const file = files[index] as WholeFile;
		const out = new TempFile(
			{ dir: asBuffer(file.dir), name: asBuffer(file.name), path: asBuffer(file.path), removeFirst: file.removeFirst },
			file.meta,
			file.size,
		);
		try {
			for (let w = 0; w < file.writes.length; w += 2) {
				out.write(asBuffer(blobs[file.writes[w] as number] as Uint8Array), file.writes[w + 1] as number);
			}
			out.finish(chown);
		} catch (error) {
			out.abandon();
			const e = error as NodeJS.ErrnoException;
			return {
				written: index,
				failure: {
					index,
					message: e.message ?? String(error),
					...(typeof e.errno === "number" ? { errno: e.errno } : {}),
					...(e.code ? { code: e.code } : {}),
				},
			};
		}
	}
	return { written: files.length };
}

/** The failure of a file written on another thread, as an error that says what the system said. */
export function failureError(failure: FileFailure): Error {
	return Object.assign(new Error(failure.message), {
		...(failure.errno !== undefined ? { errno: failure.errno } : {}),
		...(failure.code !== undefined ? { code: failure.code } : {}),
	});
}

/** Buffers arrive from another thread as plain Uint8Arrays: the same bytes, seen as a Buffer. */
function asBuffer(data: Uint8Array): Buffer {
	return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
