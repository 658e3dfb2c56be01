import { type CatalogCache, isRecord } from "../catalog/catalog-cache.js";

/**
 * What the catalog remembers of a file from the last run, enough to skip reading it:
 * [size, mtime ns, ctime ns, inode, blob IDs], the numbers past 2^53 as decimal text.
 */
export type FileState = [s: number, m: string, c: string, i: string, b: string[]];

/**
 * The states of one folder's files, by name (the name's bytes as latin1), in one catalog
 * value: a backup looks up, seals and writes a folder at a time, not each file.
 */
export interface FolderStates {
	v: 2;
	f: Record<string, unknown>;
}

/**
 * Where a folder's file states are kept. Files of the last run under the layout before this
 * one (a key per file, `file:`) are not looked for: they are read again once, and remembered here.
 */
export function folderStateKey(repositoryId: string, setName: string, root: string, relPath: Buffer): string {
	return `folder:${repositoryId}:${setName}:${root}:${relPath.toString("base64")}`;
}

/** The sources' roots are one folder above them all: a root that is a file is remembered there, by its path. */
export function rootStateKey(repositoryId: string, setName: string): string {
	return `roots:${repositoryId}:${setName}`;
}

const DIGITS = /^\d+$/;
/** Times before 1970 are negative. */
const SIGNED_DIGITS = /^-?\d+$/;

/** The state remembered for `name`, or undefined when there is none or it is damaged in any way (read the file again). */
export function stateOf(folder: FolderStates | undefined, name: string): FileState | undefined {
	if (!folder || !Object.hasOwn(folder.f, name)) return undefined;
	const state = folder.f[name];
	if (!Array.isArray(state) || state.length !== 5) return undefined;
	const [s, m, c, i, b] = state as unknown[];
	const valid =
		typeof s === "number" &&
		Number.isSafeInteger(s) &&
		s >= 0 &&
		typeof m === "string" &&
		SIGNED_DIGITS.test(m) &&
		typeof c === "string" &&
		SIGNED_DIGITS.test(c) &&
		typeof i === "string" &&
		DIGITS.test(i) &&
		Array.isArray(b) &&
		// The value verified; an ID of the right length that is no blob's is not in the index, so the file counts as changed.
		b.every((id) => typeof id === "string" && id.length === 64);
	return valid ? (state as FileState) : undefined;
}

/** A file's times and inode as its tree node holds them, in decimal text: converted once per file, not again here. */
export interface ScannedFile {
	readonly mtime: string;
	readonly ctime: string;
	readonly inode: string;
}

/** Whether the state describes the file as listed now (`size` is the listed size). */
export function sameFile(state: FileState | undefined, size: number, scanned: ScannedFile): state is FileState {
	return (
		state !== undefined &&
		state[0] === size &&
		state[1] === scanned.mtime &&
		state[2] === scanned.ctime &&
		state[3] === scanned.inode
	);
}

export function fileState(size: number, scanned: ScannedFile, blobs: string[]): FileState {
	return [size, scanned.mtime, scanned.ctime, scanned.inode, blobs];
}

/** A folder value of another layout or shape is a miss; each file's state is checked when it is asked for. */
function isFolderStates(value: unknown): value is FolderStates {
	return isRecord(value) && value.v === 2 && isRecord(value.f);
}

/** Several folders' states in one catalog call, each verified as every cached value is. */
export async function readFolderStates(cache: CatalogCache, keys: readonly string[]): Promise<(FolderStates | undefined)[]> {
	return cache.getMany(keys, isFolderStates);
}
