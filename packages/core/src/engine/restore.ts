import { constants } from "node:fs";
import { chmod, lchown, lstat, lutimes, mkdir, open, rm, symlink, utimes } from "node:fs/promises";
import { Bounded } from "../host/bounded.js";
import { HoldfastError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import type { Repository } from "../repository/repository.js";
import type { SnapshotRef } from "../repository/snapshot.js";
import { decodeName, type TreeNode } from "../repository/tree.js";

export interface RestoreOptions {
	readonly target: string;
	/** Keep only paths matching one of these (relative to the snapshot root, e.g. `share/docs/**`). */
	readonly include?: (path: string) => boolean;
	readonly overwrite?: boolean;
	readonly logger: Logger;
	readonly onFile?: (path: string, bytes: number) => void;
	readonly signal?: AbortSignal;
}

export interface RestoreSummary {
	files: number;
	dirs: number;
	symlinks: number;
	bytes: number;
	skippedExisting: string[];
	special: number;
}

/**
 * Restores a snapshot's tree under `target`. Every blob is verified on read (AEAD and its
 * keyed ID); an existing file is left alone unless `overwrite` says otherwise.
 */
export async function restoreSnapshot(
	repository: Repository,
	ref: SnapshotRef,
	options: RestoreOptions,
): Promise<RestoreSummary> {
	const summary: RestoreSummary = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skippedExisting: [], special: 0 };
	const target = Buffer.from(options.target);
	await mkdir(options.target, { recursive: true });
	const dirTimes: { path: Buffer; node: TreeNode }[] = [];
	const isRoot = process.getuid?.() === 0;
	const files = new Bounded(8);

	const walk = async (treeId: string, dirPath: Buffer, relative: string) => {
		const tree = await repository.loadTree(treeId);
		for (const node of tree.nodes) {
			if (options.signal?.aborted) throw new HoldfastError("ABORTED", "restore aborted");
			const nameBytes = decodeName(node.name);
			if (
				nameBytes.length === 0 ||
				nameBytes.includes(0x2f) ||
				nameBytes.equals(Buffer.from("..")) ||
				nameBytes.equals(Buffer.from("."))
			) {
				throw new HoldfastError("CORRUPT", `tree ${treeId.slice(0, 16)}: unsafe name ${JSON.stringify(node.name)}`);
			}
			const path = Buffer.concat([dirPath, Buffer.from("/"), nameBytes]);
			const rel = relative ? `${relative}/${nameBytes.toString("utf8")}` : nameBytes.toString("utf8");
			if (node.type === "dir") {
				// With include patterns, directories appear only when something inside them is restored.
				const whole = !options.include || options.include(rel);
				if (whole) await mkdir(path, { recursive: true });
				if (node.subtree) await walk(node.subtree, path, rel);
				if (whole || (await exists(path))) {
					dirTimes.push({ path, node });
					summary.dirs++;
				}
				continue;
			}
			if (options.include && !options.include(rel)) continue;
			if (options.include) await mkdir(dirPath, { recursive: true });
			if (!options.overwrite && (await exists(path))) {
				summary.skippedExisting.push(rel);
				continue;
			}
			if (node.type === "file") {
				// Files are written a few at a time: the pack cache and the libuv pool stay busy.
				await files.add(async () => {
					await writeContent(repository, path, node);
					await applyMetadata(path, node, isRoot);
					summary.files++;
					summary.bytes += node.size;
					options.onFile?.(rel, node.size);
				});
			} else if (node.type === "symlink") {
				if (options.overwrite) await rm(path, { force: true });
				await symlink(decodeName(node.target ?? ""), path);
				if (isRoot) await lchown(path, node.uid, node.gid).catch(() => undefined);
				await lutimes(path, nsToSeconds(node.mtime), nsToSeconds(node.mtime)).catch(() => undefined);
				summary.symlinks++;
			} else {
				// Sockets, FIFOs and devices are recorded, not recreated: they carry no data.
				summary.special++;
				options.logger.debug(`${rel}: ${node.type} not recreated`);
			}
		}
	};
	await walk(ref.snapshot.tree, target, "");
	await files.drain();
	// Directory times last: writing into a directory changes its mtime.
	for (const { path, node } of dirTimes.reverse()) await applyMetadata(path, node, isRoot);
	return summary;
}

async function writeContent(repository: Repository, path: Buffer, node: TreeNode): Promise<void> {
	const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
	try {
		for (const id of node.content ?? []) await handle.write(await repository.loadBlob(id, { wholePack: true }));
	} finally {
		await handle.close();
	}
}

async function applyMetadata(path: Buffer, node: TreeNode, isRoot: boolean): Promise<void> {
	if (isRoot) await lchown(path, node.uid, node.gid).catch(() => undefined);
	await chmod(path, node.mode & 0o7777);
	const seconds = nsToSeconds(node.mtime);
	await utimes(path, seconds, seconds);
}

/** fs.utimes takes seconds as a float; keep microseconds (all a double can carry at this size). */
function nsToSeconds(ns: string): number {
	const value = BigInt(ns);
	return Number(value / 1000n) / 1e6;
}

async function exists(path: Buffer): Promise<boolean> {
	try {
		await lstat(path);
		return true;
	} catch {
		return false;
	}
}
