import { type CatalogCache, isRecord } from "../catalog/catalog-cache.js";
import type { SourceEntry } from "../source/source.js";

/** What the catalog remembers of a file from the last run: enough to skip reading it. */
export interface FileState {
	s: number;
	m: string;
	c: string;
	i: string;
	b: string[];
}

export function fileStateKey(repositoryId: string, setName: string, entry: SourceEntry): string {
	return `file:${repositoryId}:${setName}:${entry.root}:${entry.relPath.toString("base64")}`;
}

export function sameFile(state: FileState | undefined, entry: SourceEntry): state is FileState {
	return (
		state !== undefined &&
		state.s === entry.size &&
		state.m === entry.mtimeNs.toString() &&
		state.c === entry.ctimeNs.toString() &&
		state.i === entry.inode.toString()
	);
}

export function fileState(entry: SourceEntry, blobs: string[]): FileState {
	return {
		s: entry.size,
		m: entry.mtimeNs.toString(),
		c: entry.ctimeNs.toString(),
		i: entry.inode.toString(),
		b: blobs,
	};
}

const DIGITS = /^\d+$/;
const BLOB_ID = /^[0-9a-f]{64}$/;

/** A state that is damaged in any way means "read the file again", never "unchanged". */
function isFileState(value: unknown): value is FileState {
	return (
		isRecord(value) &&
		typeof value.s === "number" &&
		Number.isSafeInteger(value.s) &&
		value.s >= 0 &&
		typeof value.m === "string" &&
		DIGITS.test(value.m) &&
		typeof value.c === "string" &&
		DIGITS.test(value.c) &&
		typeof value.i === "string" &&
		DIGITS.test(value.i) &&
		Array.isArray(value.b) &&
		value.b.every((id) => typeof id === "string" && BLOB_ID.test(id))
	);
}

export async function readFileState(cache: CatalogCache, key: string): Promise<FileState | undefined> {
	return cache.get(key, isFileState);
}

/** Several states in one catalog call; each verified and checked as `readFileState` does. */
export async function readFileStates(cache: CatalogCache, keys: readonly string[]): Promise<(FileState | undefined)[]> {
	return cache.getMany(keys, isFileState);
}
