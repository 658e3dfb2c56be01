import { readFile } from "node:fs/promises";
import type { Destination, FileDigests, ObjectLock } from "./destination.js";

/**
 * Stores the file at `path` (`size` bytes) as a new version of `key`: through the store's
 * `putFile` when it has one, else read whole into memory and given to `put`. The file is read
 * anew on every call, so a retried write sends it whole again.
 */
export async function putFromFile(
	destination: Destination,
	key: string,
	path: string,
	size: number,
	lock?: ObjectLock,
	digests?: FileDigests,
): Promise<{ versionId: string }> {
	if (destination.putFile) return destination.putFile(key, path, size, lock, digests);
	return destination.put(key, await readWholeFile(path, size, key), lock);
}

/** The file's bytes, all `size` of them: a file that lost or gained bytes since it was written is refused. */
export async function readWholeFile(path: string, size: number, key: string): Promise<Buffer> {
	const body = await readFile(path);
	if (body.length !== size) throw new Error(`${path}: holds ${body.length} bytes where ${size} were written for ${key}`);
	return body;
}
