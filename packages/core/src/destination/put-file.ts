import { readFile } from "node:fs/promises";
import type { Destination, FileUpload } from "./destination.js";

/**
 * Stores the upload's file as a new version of its key: through the store's `putFile` when it
 * has one, else read whole into memory and given to `put`. The file is read anew on every
 * call, so a retried write sends it whole again.
 */
export async function putFromFile(destination: Destination, upload: FileUpload): Promise<{ versionId: string }> {
	if (destination.putFile) return destination.putFile(upload);
	return destination.put(upload.key, await readWholeFile(upload), upload.lock);
}

/** The file's bytes, all `size` of them: a file that lost or gained bytes since it was written is refused. */
export async function readWholeFile({ path, size, key }: FileUpload): Promise<Buffer> {
	const body = await readFile(path);
	if (body.length !== size) throw new Error(`${path}: holds ${body.length} bytes where ${size} were written for ${key}`);
	return body;
}
