import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { HoldfastError } from "../host/errors.js";
import { makeFolders } from "../host/folders.js";
import { atPath, errnoOf } from "./restore-errors.js";

// One restore at a time into a target: a restore entering a folder removes the temporary files a
// killed one left there, and would remove those of another restore still writing them.

/** In the target folder while a restore writes into it: the process and machine that does. */
export const RESTORE_LOCK = ".holdfast-restore.lock";

/**
 * Makes the target folder and marks it as written into by this process; the returned function
 * removes the mark. A mark left by a process of this machine that is gone (a restore killed) is
 * taken over; one of a running process, or of another machine (a shared folder), refuses.
 */
export async function lockTarget(target: string): Promise<() => void> {
	await atPath(target, () => makeFolders(target));
	const path = join(target, RESTORE_LOCK);
	const owner = `${process.pid}\n${hostname()}\n`;
	for (let attempt = 0; ; attempt++) {
		let fd: number;
		try {
			fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
		} catch (error) {
			if (errnoOf(error) !== "EEXIST" || attempt > 0) throw lockError(target, path, error);
			const holder = holderOf(path);
			if (holder.alive) {
				throw new HoldfastError(
					"TARGET",
					`restore: ${target}: another restore is writing into it (${holder.who}); wait for it to end or restore elsewhere${holder.remote ? `, or remove ${path} if none runs there` : ""}`,
				);
			}
			// A killed restore's mark: its temporary files are removed as the folders are entered.
			unlinkSync(path);
			continue;
		}
		let ino: bigint;
		try {
			writeSync(fd, owner);
			ino = fstatSync(fd, { bigint: true }).ino;
		} finally {
			closeSync(fd);
		}
		return () => {
			// Only this mark: a file of the snapshot's own by that name, restored over it, stays.
			try {
				if (lstatSync(path, { bigint: true }).ino === ino) unlinkSync(path);
			} catch {
				// gone already
			}
		};
	}
}

function holderOf(path: string): { alive: boolean; who: string; remote: boolean } {
	let lines: string[] = [];
	try {
		lines = readFileSync(path, "utf8").split("\n");
	} catch {
		// unreadable: taken for another machine's, below
	}
	const pid = Number(lines[0]);
	const host = lines[1] ?? "";
	if (host !== hostname()) {
		return { alive: true, who: host ? `process ${pid} on ${host}` : "a process it does not name", remote: true };
	}
	if (!Number.isSafeInteger(pid) || pid <= 0) return { alive: false, who: "", remote: false };
	return { alive: isRunning(pid), who: `process ${pid}`, remote: false };
}

/** Whether `pid` runs: a killed process nobody has reaped yet (a zombie, an orphan's in a container) does not. */
function isRunning(pid: number): boolean {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
		const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
		return state !== "Z" && state !== "X";
	} catch (error) {
		if (errnoOf(error) === "ENOENT") return false;
		// No /proc here: the signal test alone.
	}
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		// EPERM: alive, another user's.
		return errnoOf(error) === "EPERM";
	}
}

function lockError(target: string, path: string, error: unknown): HoldfastError {
	return new HoldfastError(
		"TARGET",
		`restore: ${target}: cannot mark it as being restored into (${path}: ${(error as Error).message})`,
		{
			cause: error,
		},
	);
}
