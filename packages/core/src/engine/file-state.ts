import type { Catalog } from "../catalog/catalog.js";
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

export async function readFileState(catalog: Catalog, key: string): Promise<FileState | undefined> {
	return (await catalog.get(key)) as FileState | undefined;
}
