import { createHash, randomBytes } from "node:crypto";
import { close, closeSync, constants, open, openSync, readSync, write } from "node:fs";
import { chmod, lstat, readdir, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeFolders } from "../host/folders.js";

/**
 * The temporary file a pack is assembled in as its blobs are sealed, as restic's packer does:
 * its bytes sit in the page cache, not in this process's memory, until the destination takes
 * the file. Writes are positional and may run in any order; `settled` waits for them all.
 * Files are named for the process that made them, so a run killed midway leaves files the
 * next run removes (`removeStalePackFiles`).
 */
export class PackFile {
	/** Writes not finished yet; the first failure is kept for `settled`. */
	#writing = 0;
	#failure: unknown;
	#idle: (() => void)[] = [];
	#closed: Promise<void> | undefined;

	private constructor(
		readonly path: string,
		/** The open file: opened at once, waited for by the first write, so a new pack never waits for the disk. */
		readonly fd: Promise<number>,
	) {}

	/** A new empty file in `dir` (the OS temp folder's `holdfast-packs` by default). */
	static create(dir = packFileFolder()): PackFile {
		const path = join(dir, `${process.pid}-${randomBytes(6).toString("hex")}${PACK_FILE_SUFFIX}`);
		const fd = ownFolder(dir).then(
			() =>
				new Promise<number>((resolve, reject) =>
					// Only this user reads it: the bytes are sealed, but the file says how much is backed up.
					open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600, (error, fd) =>
						error ? reject(error) : resolve(fd),
					),
				),
		);
		const opened = fd.catch((error: unknown) => {
			throw cannotWrite(path, error);
		});
		opened.catch(() => undefined);
		return new PackFile(path, opened);
	}

	/** Writes `bytes` at `position`; resolves once they are in the file. The caller keeps `bytes` unchanged until then. */
	write(bytes: Uint8Array, position: number): Promise<void> {
		this.#writing++;
		return this.#writeAll(bytes, position)
			.catch((error: unknown) => {
				const failure = (error as Error).message?.startsWith(this.path) ? error : cannotWrite(this.path, error);
				this.#failure ??= failure;
				throw failure;
			})
			.finally(() => {
				if (--this.#writing === 0) for (const wake of this.#idle.splice(0)) wake();
			});
	}

	async #writeAll(bytes: Uint8Array, position: number): Promise<void> {
		const fd = await this.fd;
		for (let done = 0; done < bytes.length; ) {
			const written = await new Promise<number>((resolve, reject) =>
				write(fd, bytes, done, bytes.length - done, position + done, (error, n) => (error ? reject(error) : resolve(n))),
			);
			done += written;
		}
	}

	/** Waits for every write started so far (and for the file to exist); throws the first failure. */
	async settled(): Promise<void> {
		await this.fd;
		while (this.#writing > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
		if (this.#failure !== undefined) throw this.#failure;
	}

	/** Closes the file once its writes are done (the file stays). */
	close(): Promise<void> {
		this.#closed ??= (async () => {
			while (this.#writing > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
			const fd = await this.fd.catch(() => undefined);
			if (fd !== undefined) await new Promise<void>((resolve) => close(fd, () => resolve()));
		})();
		return this.#closed;
	}

	/** Closes and deletes the file; nothing is left whatever happened to it. */
	async remove(): Promise<void> {
		await this.close();
		await unlink(this.path).catch(() => undefined);
	}
}

const PACK_FILE_SUFFIX = ".pack.tmp";

/** A pack file that cannot be made or written, in one line: which file, why, and where the folder is set. */
function cannotWrite(path: string, error: unknown): Error {
	const reason = (error as Error).message ?? String(error);
	return new Error(`${path}: cannot write a pack being assembled (the folder is set by TMPDIR): ${reason}`, { cause: error });
}

/**
 * Where packs are assembled: the OS temp folder (TMPDIR), where a user expects passing files
 * and the repository's disk is not used twice. One folder per user: a shared one, made by
 * whoever ran first, would refuse everyone else.
 */
export function packFileFolder(): string {
	const uid = process.getuid?.();
	return uid === undefined ? legacyPackFileFolder() : join(tmpdir(), `holdfast-packs-${uid}`);
}

/** The one folder every user shared before there was one per user. */
export function legacyPackFileFolder(): string {
	return join(tmpdir(), "holdfast-packs");
}

/**
 * Makes the pack folder (0700) and checks it is this user's own, before each pack: in a shared
 * temp folder another user could have made it first, or again after a cleaner removed it, to
 * watch or remove the packs. Two calls per pack of 16 MiB.
 */
async function ownFolder(dir: string): Promise<void> {
	await makeFolders(dir, 0o700);
	const info = await lstat(dir);
	const uid = process.getuid?.();
	if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) {
		throw Object.assign(new Error(`${dir} belongs to another user or is not a folder`), { code: "EACCES" });
	}
	if ((info.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

/**
 * Deletes pack files of processes that are gone (killed mid-run), so that leftovers never
 * pile up: each run sweeps before it makes its first. Files of live processes are theirs.
 */
export async function removeStalePackFiles(dir = packFileFolder()): Promise<number> {
	let names: string[];
	try {
		names = await readdir(dir);
	} catch {
		return 0;
	}
	let removed = 0;
	for (const name of names) {
		if (!name.endsWith(PACK_FILE_SUFFIX)) continue;
		const pid = Number(name.slice(0, name.indexOf("-")));
		if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
		await unlink(join(dir, name)).then(
			() => removed++,
			() => undefined,
		);
	}
	return removed;
}

function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		// EPERM: alive, owned by another user.
		return (error as NodeJS.ErrnoException).code === "EPERM";
	}
}

/** The read buffer of `digestFile`, one per thread. */
let digestChunk: Buffer | undefined;

/** A pack file's SHA-256 (hex; its key) and, when asked, its MD5 (base64; what a store wants sent with it). */
export interface PackFileDigests {
	readonly sha256: string;
	readonly md5?: string;
}

/** Digests of the `size` bytes of the file at `path`, read from the page cache in pieces, once for all of them. */
export function digestFile(path: string, size: number, md5 = false): PackFileDigests {
	digestChunk ??= Buffer.allocUnsafe(256 * 1024);
	const hash = createHash("sha256");
	const md5Hash = md5 ? createHash("md5") : undefined;
	const fd = openSync(path, "r");
	try {
		for (let position = 0; position < size; ) {
			const read = readSync(fd, digestChunk, 0, Math.min(digestChunk.length, size - position), position);
			if (read === 0) throw new Error(`${path}: ends after ${position} of its ${size} bytes`);
			hash.update(digestChunk.subarray(0, read));
			md5Hash?.update(digestChunk.subarray(0, read));
			position += read;
		}
	} finally {
		closeSync(fd);
	}
	return { sha256: hash.digest("hex"), ...(md5Hash ? { md5: md5Hash.digest("base64") } : {}) };
}
