import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, copyFile, link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import {
	type ByteRange,
	type Clock,
	type DestinationCapabilities,
	type DestinationCheck,
	type DoctorFinding,
	type DoctorRequest,
	type FileUpload,
	HoldfastError,
	type ListedObject,
	type LockRecordStore,
	makeFolders,
	type ObjectLock,
	ObjectNotFoundError,
	type ObjectVersion,
	type PreflightRequest,
} from "@holdfast/core";

export interface FsDestinationOptions {
	/** The folder that holds the repository. */
	readonly path: string;
	/** Emulate a store that cannot extend locks (tests of the re-include strategy). */
	readonly lockExtension?: boolean;
	readonly maxRetentionDays?: number;
}

/** One version's record, kept beside its bytes. */
interface VersionMeta {
	versionId: string;
	size: number;
	created: string;
	deleteMarker: boolean;
	lock?: { mode: "compliance" | "governance"; until: string };
	/** Bytes without their record: listed for grooming, never read. */
	incomplete?: boolean;
}

const VERSIONS_SUFFIX = ".versions";

/**
 * Objects as files: each key is a folder of versions, each version its bytes plus a small JSON
 * record of its lock, kept as told. The core's lock emulation judges those records (see
 * `FsDestination`); writes are atomic (temp file, fsync, rename).
 */
export class FsStore implements LockRecordStore {
	readonly description: string;
	readonly capabilities: DestinationCapabilities;
	readonly localFolder: string;
	readonly #root: string;
	#sequence = 0;

	constructor(
		options: FsDestinationOptions,
		private readonly clock: Clock,
		configDir = process.cwd(),
	) {
		this.#root = resolve(configDir, options.path);
		this.description = `fs:${this.#root}`;
		this.localFolder = this.#root;
		this.capabilities = {
			enforcedByProvider: false,
			lockExtension: options.lockExtension ?? true,
			maxRetentionDays: options.maxRetentionDays ?? 36_500,
		};
	}

	async preflight(request: PreflightRequest): Promise<DestinationCheck> {
		const problems: string[] = [];
		const notes = ["local directory: locks are emulated and do not stop someone who controls this disk"];
		try {
			if (request.create) await makeFolders(join(this.#root, "objects"));
			const info = await stat(this.#root);
			if (!info.isDirectory()) problems.push(`${this.#root} is not a folder`);
		} catch (error) {
			const missing = (error as NodeJS.ErrnoException).code === "ENOENT" && !request.create;
			problems.push(
				`${this.description}: ${request.create ? "cannot create the repository folder" : "cannot open the repository folder"}: ${explain(error)}${missing ? ' (run "holdfast init")' : ""}`,
			);
		}
		return { ok: problems.length === 0, problems, notes };
	}

	/** A folder has no key to inspect: what matters is that it is writable, and that its locks are emulated. */
	async doctor(request: DoctorRequest): Promise<DoctorFinding[]> {
		const cap = this.capabilities.maxRetentionDays;
		const findings: DoctorFinding[] = [
			request.retentionDays > cap
				? {
						check: "retention cap",
						status: "fail",
						detail: `retention ${request.retentionDays} days exceeds this destination's cap of ${cap}`,
					}
				: { check: "retention cap", status: "ok", detail: `${request.retentionDays} days, within ${cap}` },
		];
		try {
			if (!(await stat(this.#root)).isDirectory()) throw new Error("not a folder");
			await access(join(this.#root, "objects"), constants.W_OK);
			findings.push({ check: "folder", status: "ok", detail: `${this.#root} holds a repository folder this user may write` });
		} catch (error) {
			const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
			findings.push({
				check: "folder",
				status: "fail",
				detail: `${this.#root}: ${missing ? 'no repository folder (run "holdfast init")' : explain(error)}`,
			});
		}
		findings.push({
			check: "locks",
			status: "warn",
			detail:
				"emulated by holdfast: they stop mistakes and scripts, not ransomware running as a user who may write this folder; use an Object Lock bucket for that",
		});
		return findings;
	}

	#keyDir(key: string): string {
		if (key.includes("..") || key.startsWith("/") || key === "") throw new Error(`invalid object key: ${key}`);
		return join(this.#root, "objects", `${key}${VERSIONS_SUFFIX}`);
	}

	#newVersionId(): string {
		// Sortable by time, unique within and across processes.
		const seq = (this.#sequence++).toString(36).padStart(4, "0");
		return `${Date.now().toString(36).padStart(9, "0")}${seq}${randomBytes(4).toString("hex")}`;
	}

	async put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }> {
		const dir = this.#keyDir(key);
		const versionId = this.#newVersionId();
		await this.#writing(key, async () => {
			await makeFolders(dir);
			await writeAtomic(join(dir, `${versionId}.data`), body);
			const meta: VersionMeta = {
				versionId,
				size: body.byteLength,
				created: this.clock.now().toISOString(),
				deleteMarker: false,
				...(lock ? { lock: { mode: lock.mode, until: lock.until.toISOString() } } : {}),
			};
			await writeAtomic(join(dir, `${versionId}.json`), Buffer.from(JSON.stringify(meta)));
		});
		return { versionId };
	}

	/** As `put`, from a file the caller keeps (a pack assembled on disk): linked into place where the disk allows, else copied. */
	async putFile({ key, path, size, lock }: FileUpload): Promise<{ versionId: string }> {
		const dir = this.#keyDir(key);
		const versionId = this.#newVersionId();
		await this.#writing(key, async () => {
			await makeFolders(dir);
			await placeAtomic(path, size, join(dir, `${versionId}.data`));
			const meta: VersionMeta = {
				versionId,
				size,
				created: this.clock.now().toISOString(),
				deleteMarker: false,
				...(lock ? { lock: { mode: lock.mode, until: lock.until.toISOString() } } : {}),
			};
			await writeAtomic(join(dir, `${versionId}.json`), Buffer.from(JSON.stringify(meta)));
		});
		return { versionId };
	}

	/** A failed write names this destination, the object and the real cause (read-only, full, denied). */
	async #writing(key: string, body: () => Promise<void>): Promise<void> {
		try {
			await body();
		} catch (error) {
			if (!(error as NodeJS.ErrnoException).code) throw error;
			throw new HoldfastError("DESTINATION", `${this.description}: cannot write ${key}: ${explain(error)}`, { cause: error });
		}
	}

	async #versions(key: string): Promise<VersionMeta[]> {
		let names: string[];
		try {
			names = await readdir(this.#keyDir(key));
		} catch {
			return [];
		}
		const metas: VersionMeta[] = [];
		for (const name of names) {
			if (!name.endsWith(".json")) continue;
			try {
				metas.push(JSON.parse(await readFile(join(this.#keyDir(key), name), "utf8")) as VersionMeta);
			} catch {
				// a torn record from a crash mid-write: the version never existed
			}
		}
		// Bytes whose record a crash cut off: complete (written atomically) but never locked. They
		// are listed as unlocked, incomplete versions: grooming collects them like any other leak,
		// and no reader takes them for the object (an index object cut off so would vouch for a
		// lock it never got).
		const recorded = new Set(metas.map((m) => m.versionId));
		for (const name of names) {
			if (!name.endsWith(".data") || recorded.has(name.slice(0, -".data".length))) continue;
			const info = await stat(join(this.#keyDir(key), name)).catch(() => undefined);
			if (info) {
				metas.push({
					versionId: name.slice(0, -".data".length),
					size: info.size,
					created: info.mtime.toISOString(),
					deleteMarker: false,
					incomplete: true,
				});
			}
		}
		return metas.sort((a, b) => b.versionId.localeCompare(a.versionId));
	}

	async get(key: string, options: { versionId?: string; range?: ByteRange } = {}): Promise<Uint8Array> {
		const versions = await this.#versions(key);
		const version = options.versionId
			? versions.find((v) => v.versionId === options.versionId)
			: versions.find((v) => !v.incomplete);
		if (!version || version.deleteMarker) throw new ObjectNotFoundError(key);
		const file = join(this.#keyDir(key), `${version.versionId}.data`);
		if (!options.range) return readFile(file);
		const handle = await open(file, constants.O_RDONLY);
		try {
			const buffer = Buffer.alloc(options.range.length);
			const { bytesRead } = await handle.read(buffer, 0, options.range.length, options.range.offset);
			return buffer.subarray(0, bytesRead);
		} finally {
			await handle.close();
		}
	}

	async head(key: string, versionId?: string): Promise<ObjectVersion | undefined> {
		const versions = await this.#versions(key);
		const version = versionId ? versions.find((v) => v.versionId === versionId) : versions[0];
		if (!version || (!versionId && version.deleteMarker)) return undefined;
		return toVersion(key, version, version === versions[0]);
	}

	async *list(prefix: string): AsyncIterable<ListedObject> {
		for await (const key of this.#keys(prefix)) {
			const latest = (await this.#versions(key))[0];
			if (latest && !latest.deleteMarker) yield { key, size: latest.size, lastModified: new Date(latest.created) };
		}
	}

	async *listVersions(prefix: string): AsyncIterable<ObjectVersion> {
		for await (const key of this.#keys(prefix)) {
			const versions = await this.#versions(key);
			for (const [i, version] of versions.entries()) yield toVersion(key, version, i === 0);
		}
	}

	async *#keys(prefix: string): AsyncIterable<string> {
		const base = join(this.#root, "objects");
		// Start at the deepest folder the prefix names, then filter by the full prefix.
		const start = join(base, prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "");
		const walk = async function* (dir: string): AsyncIterable<string> {
			let entries: import("node:fs").Dirent[];
			try {
				entries = await readdir(dir, { withFileTypes: true });
			} catch {
				return;
			}
			entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
			for (const entry of entries) {
				if (!entry.isDirectory()) continue;
				const full = join(dir, entry.name);
				if (entry.name.endsWith(VERSIONS_SUFFIX)) {
					const key = relative(base, full).slice(0, -VERSIONS_SUFFIX.length).split("\\").join("/");
					if (key.startsWith(prefix)) yield key;
				} else {
					yield* walk(full);
				}
			}
		};
		yield* walk(start);
	}

	async extendLock(key: string, versionId: string, lock: ObjectLock): Promise<void> {
		const meta = await this.#meta(key, versionId);
		meta.lock = { mode: lock.mode, until: lock.until.toISOString() };
		await this.#writing(key, () => writeAtomic(join(this.#keyDir(key), `${versionId}.json`), Buffer.from(JSON.stringify(meta))));
	}

	/**
	 * Runs `body` holding a guard folder beside the version (mkdir is atomic across processes):
	 * two processes extending one pack at once must not let the later write put back the
	 * shorter date. A guard older than GUARD_STALE_MS was left by a killed process and is taken over.
	 */
	async exclusive<T>(key: string, versionId: string, body: () => Promise<T>): Promise<T> {
		const guard = join(this.#keyDir(key), `.${versionId}.guard`);
		for (;;) {
			try {
				await mkdir(guard);
				break;
			} catch (error) {
				const code = (error as NodeJS.ErrnoException).code;
				if (code === "ENOENT") throw new ObjectNotFoundError(`${key} (${versionId})`);
				if (code !== "EEXIST") throw error;
				const since = await stat(guard).then(
					(s) => Date.now() - s.mtimeMs,
					() => 0,
				);
				if (since > GUARD_STALE_MS) await rm(guard, { recursive: true, force: true });
				else await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
			}
		}
		try {
			return await body();
		} finally {
			await rm(guard, { recursive: true, force: true });
			// A key whose last version went leaves no folder (rmdir refuses one that still holds a version).
			await rmdir(this.#keyDir(key)).catch(() => undefined);
		}
	}

	async deleteVersion(key: string, versionId: string): Promise<void> {
		const dir = this.#keyDir(key);
		await this.#meta(key, versionId);
		await rm(join(dir, `${versionId}.json`), { force: true });
		await rm(join(dir, `${versionId}.data`), { force: true });
		await rmdir(dir).catch(() => undefined);
	}

	async deleteMarker(key: string): Promise<void> {
		const dir = this.#keyDir(key);
		const versionId = this.#newVersionId();
		const meta: VersionMeta = { versionId, size: 0, created: this.clock.now().toISOString(), deleteMarker: true };
		await this.#writing(key, async () => {
			await makeFolders(dir);
			await writeAtomic(join(dir, `${versionId}.json`), Buffer.from(JSON.stringify(meta)));
		});
	}

	async #meta(key: string, versionId: string): Promise<VersionMeta> {
		const meta = (await this.#versions(key)).find((v) => v.versionId === versionId);
		if (!meta) throw new ObjectNotFoundError(`${key} (${versionId})`);
		return meta;
	}
}

/** Longer than any lock update takes, even on a slow disk: a guard this old is abandoned. */
const GUARD_STALE_MS = 30_000;

function toVersion(key: string, meta: VersionMeta, isLatest: boolean): ObjectVersion {
	return {
		key,
		versionId: meta.versionId,
		size: meta.size,
		lastModified: new Date(meta.created),
		isDeleteMarker: meta.deleteMarker,
		isLatest,
		...(meta.lock ? { lock: { mode: meta.lock.mode, until: new Date(meta.lock.until) } } : {}),
		...(meta.incomplete ? { incomplete: true } : {}),
	};
}

const CAUSES: Record<string, string> = {
	EROFS: "read-only file system",
	ENOSPC: "no space left on the device",
	EDQUOT: "disk quota exceeded",
	EACCES: "permission denied",
	EPERM: "operation not permitted",
	ENOENT: "no such folder",
	ENOTDIR: "a path component is not a folder",
	EIO: "input/output error",
};

/** The cause in words, with the code a search engine knows. */
function explain(error: unknown): string {
	const code = (error as NodeJS.ErrnoException).code;
	if (code && CAUSES[code]) return `${CAUSES[code]} (${code})`;
	return (error as Error).message ?? String(error);
}

async function writeAtomic(path: string, body: Uint8Array): Promise<void> {
	const temp = join(dirname(path), `.tmp-${randomBytes(6).toString("hex")}`);
	const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
	try {
		await handle.writeFile(body);
		await handle.sync();
	} finally {
		await handle.close();
	}
	await rename(temp, path);
}

/** A hard link cannot be made here (another disk, a file system without links): the file is copied instead. */
const NO_LINK = new Set(["EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "ENOSYS"]);

/**
 * Puts the `size` bytes of `source` at `path` as `writeAtomic` does (temp name, fsync,
 * rename), without reading them: a second name for the same file where the disk allows
 * (the caller never writes it again and only removes its own name), else a copy the kernel
 * makes (a clone where the file system can).
 */
async function placeAtomic(source: string, size: number, path: string): Promise<void> {
	const temp = join(dirname(path), `.tmp-${randomBytes(6).toString("hex")}`);
	try {
		await link(source, temp);
	} catch (error) {
		if (!NO_LINK.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
		await copyFile(source, temp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
	}
	try {
		const handle = await open(temp, constants.O_RDWR);
		try {
			const { size: found } = await handle.stat();
			if (found !== size) throw new Error(`${source}: holds ${found} bytes where ${size} were written`);
			await handle.sync();
		} finally {
			await handle.close();
		}
		await rename(temp, path);
	} catch (error) {
		await rm(temp, { force: true });
		throw error;
	}
}
