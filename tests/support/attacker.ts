import { createHash } from "node:crypto";
import {
	type Destination,
	decodeName,
	type Logger,
	ManualClock,
	MemoryLogger,
	Repository,
	type SnapshotRef,
} from "@holdfast/core";
import { attackerView } from "@holdfast/core/testing";

/** What a snapshot must restore to: relative path → SHA-256 of the content. */
export type ExpectedFiles = Map<string, string>;

export interface ExpectedSnapshot {
	readonly time: string;
	readonly protectUntil: Date;
	readonly files: ExpectedFiles;
}

export interface AttackOutcome {
	readonly at: Date;
	/** Snapshots that had to restore (their window still open at `at`). */
	readonly inWindow: number;
	readonly restored: number;
	readonly failures: string[];
}

/**
 * The attacker's test of the invariant at instant `at`: every version whose lock has ended is
 * deleted, the catalog is gone, and every snapshot whose window is still open must restore
 * bit-exactly from what is left and the password alone.
 */
export async function attackAndRestore(
	destination: Destination,
	password: string,
	expected: readonly ExpectedSnapshot[],
	at: Date,
): Promise<AttackOutcome> {
	const due = expected.filter((s) => s.protectUntil.getTime() > at.getTime());
	const failures: string[] = [];
	if (due.length === 0) return { at, inWindow: 0, restored: 0, failures };
	const logger: Logger = new MemoryLogger("error");
	let repository: Repository;
	try {
		repository = await Repository.open(password, {
			destination: attackerView(destination, at),
			clock: new ManualClock(at),
			logger,
		});
	} catch (error) {
		return { at, inWindow: due.length, restored: 0, failures: [`open: ${(error as Error).message}`] };
	}
	let restored = 0;
	try {
		await repository.loadIndex();
		const listed = new Map((await repository.listSnapshots()).map((r) => [r.snapshot.time, r]));
		for (const snapshot of due) {
			const ref = listed.get(snapshot.time);
			if (!ref) {
				failures.push(`snapshot of ${snapshot.time}: not listed`);
				continue;
			}
			try {
				const problem = compare(await readAll(repository, ref), snapshot.files);
				if (problem) failures.push(`snapshot of ${snapshot.time}: ${problem}`);
				else restored++;
			} catch (error) {
				failures.push(`snapshot of ${snapshot.time}: ${(error as Error).message}`);
			}
		}
	} finally {
		await repository.close();
	}
	return { at, inWindow: due.length, restored, failures };
}

/** Reads every file of a snapshot through the same verified blob reads a restore makes. */
async function readAll(repository: Repository, ref: SnapshotRef): Promise<ExpectedFiles> {
	const files: ExpectedFiles = new Map();
	const walk = async (treeId: string, prefix: string) => {
		const tree = await repository.loadTree(treeId);
		for (const node of tree.nodes) {
			const path = prefix ? `${prefix}/${decodeName(node.name).toString("latin1")}` : decodeName(node.name).toString("latin1");
			if (node.type === "dir" && node.subtree) await walk(node.subtree, path);
			else if (node.type === "file") {
				const hash = createHash("sha256");
				for (const id of node.content ?? []) hash.update(await repository.loadBlob(id, { wholePack: true }));
				files.set(path, hash.digest("hex"));
			}
		}
	};
	await walk(ref.snapshot.tree, "");
	return files;
}

function compare(actual: ExpectedFiles, expected: ExpectedFiles): string | undefined {
	for (const [path, sha] of expected) {
		const got = actual.get(path);
		if (got === undefined) return `${path} missing`;
		if (got !== sha) return `${path} differs`;
	}
	for (const path of actual.keys()) if (!expected.has(path)) return `${path} was not in the source`;
	return undefined;
}
