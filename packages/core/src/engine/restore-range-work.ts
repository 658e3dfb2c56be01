import type { BlobWork, Regions } from "../repository/blob-work.js";
import { type FileMeta, TempFile, writeSparse } from "./restore-writer.js";

// Restore's share of the blob pool's threads: a read range opened, and the files inside it written there.

/** A file whose blobs all lie in one read range: written whole by the thread that opens them. */
export interface WholeFile {
	/** Its folder's path, a slash, and its name. */
	readonly path: Uint8Array;
	/** Where the name starts in `path`. */
	readonly nameAt: number;
	/** The path holds a folder that goes first (--overwrite). */
	readonly removeFirst: boolean;
	readonly size: number;
	readonly meta: FileMeta;
	/** Pairs of [index of a blob in the range, offset in the file]. */
	readonly writes: readonly number[];
}

/**
 * Blobs of this range for a file that spans several: written at their offsets into the
 * temporary file the main thread created and keeps open (a descriptor is the process's, valid
 * on every thread), which finishes the file once every range has been written.
 */
export interface SpanWrite {
	readonly fd: number;
	/** Pairs of [index of a blob in the range, offset in the file]. */
	readonly writes: readonly number[];
}

/** Files to write while a range is open: those inside it whole, and parts of those spanning ranges. */
export interface RangeFiles {
	readonly files: readonly WholeFile[];
	readonly spans: readonly SpanWrite[];
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
	/**
	 * A blob that does not verify is left out, and every file that needs it with it (told in
	 * `damaged`), instead of failing the range; unless no blob of the range verifies, which says
	 * this is not the pack's data at all (the reader then tries the pack's older versions).
	 */
	readonly spareDamaged?: boolean;
}

/** Why a file could not be written, as the system said it (errno survives the hop between threads). */
export interface FileFailure {
	readonly index: number;
	readonly message: string;
	readonly errno?: number;
	readonly code?: string;
}

export interface RangeRestored {
	/** The first `written` files are in place; on a failure it names the next, and none after it was begun. */
	readonly written: number;
	readonly failure?: FileFailure;
	/** Per span, the end of the last byte written (0 when all of it was a hole); empty when the files failed. */
	readonly spanEnds: readonly number[];
	/** The span whose write failed (`index` is its place in `spans`); those after it were not written. */
	readonly spanFailure?: FileFailure;
	/** With `spareDamaged`: the blobs (by their place in the range) that did not verify, and why. */
	readonly damaged?: readonly { readonly index: number; readonly message: string }[];
}

/**
 * Opens and verifies every blob of the range first (a corrupt blob fails it before any file
 * is touched), then writes each whole file and each span with synchronous calls: on a worker
 * thread they cost no hop to the libuv pool, and no plaintext goes back to the main thread,
 * which for large files had received and collected every byte (a fifth of its time).
 */
export function restoreRange(work: BlobWork, request: RestoreRangeRequest): { result: RangeRestored; transfer: ArrayBuffer[] } {
	const { ids, packKey, rawLengths, files } = request;
	const damaged: { index: number; message: string; error: Error }[] = [];
	const spare = request.spareDamaged
		? (index: number, error: Error) => damaged.push({ index, message: error.message, error })
		: undefined;
	const plains = work.openRange(request.data, request.regions, ids, packKey, rawLengths, spare);
	if (damaged.length === 0) return { result: writeRange(plains, files), transfer: [] };
	if (damaged.length === ids.length) throw (damaged[0] as { error: Error }).error;
	const result = writeRange(plains, files);
	return { result: { ...result, damaged: damaged.map(({ index, message }) => ({ index, message })) }, transfer: [] };
}

/**
 * The range's whole files, then (when they all succeeded) its spans. A file or span that needs a
 * blob left out (undefined: it did not verify) is not written; the caller knows which those are.
 */
export function writeRange(blobs: readonly (Uint8Array | undefined)[], files: RangeFiles): RangeRestored {
	const outcome = writeWholeFiles(blobs, files.files, files.chown);
	if (outcome.failure) return { ...outcome, spanEnds: [] };
	const spanEnds: number[] = [];
	for (let index = 0; index < files.spans.length; index++) {
		const { fd, writes } = files.spans[index] as SpanWrite;
		let end = 0;
		if (!hasAll(blobs, writes)) {
			spanEnds.push(0);
			continue;
		}
		try {
			for (let w = 0; w < writes.length; w += 2) {
				end = Math.max(end, writeSparse(fd, asBuffer(blobs[writes[w] as number] as Uint8Array), writes[w + 1] as number));
			}
		} catch (error) {
			return { ...outcome, spanEnds, spanFailure: failureOf(index, error) };
		}
		spanEnds.push(end);
	}
	return { ...outcome, spanEnds };
}

/** Writes the files in order and stops at the first that fails, its temporary file removed. */
export function writeWholeFiles(
	blobs: readonly (Uint8Array | undefined)[],
	files: readonly WholeFile[],
	chown: boolean,
): Pick<RangeRestored, "written" | "failure"> {
	for (let index = 0; index < files.length; index++) {
		const file = files[index] as WholeFile;
		if (!hasAll(blobs, file.writes)) continue;
		const path = asBuffer(file.path);
		const out = new TempFile(
			{
				dir: path.subarray(0, file.nameAt - 1),
				name: path.subarray(file.nameAt),
				path,
				removeFirst: file.removeFirst,
			},
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
			return { written: index, failure: failureOf(index, error) };
		}
	}
	return { written: files.length };
}

/** Whether every blob `writes` names (pairs of [blob, offset]) was opened. */
function hasAll(blobs: readonly (Uint8Array | undefined)[], writes: readonly number[]): boolean {
	for (let w = 0; w < writes.length; w += 2) if (blobs[writes[w] as number] === undefined) return false;
	return true;
}

function failureOf(index: number, error: unknown): FileFailure {
	const e = error as NodeJS.ErrnoException;
	return {
		index,
		message: e.message ?? String(error),
		...(typeof e.errno === "number" ? { errno: e.errno } : {}),
		...(e.code ? { code: e.code } : {}),
	};
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
