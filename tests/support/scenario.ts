import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS, type SnapshotRef } from "@holdfast/core";
import { collectSnapshotObjects, metadataFor } from "@holdfast/core/testing";
import type { Harness } from "./harness.js";

/**
 * The time-travel world: files that never change, change every week, and come and go.
 * Week `n` is day 7n after the start.
 */
export async function writeWeek(h: Harness, week: number): Promise<void> {
	const src = join(h.dir, "src");
	if (week === 0) await writeFile(join(src, "static.txt"), "written once, never changed\n".repeat(100));
	await writeFile(join(src, "weekly.txt"), `week ${week}\n`.repeat(50 + week));
	if (week % 2 === 0) await writeFile(join(src, "flicker.txt"), `present in week ${week}\n`);
	else await rm(join(src, "flicker.txt"), { force: true });
}

export async function runWeek(h: Harness, week: number, start: Date) {
	h.clock.set(start.getTime() + week * 7 * DAY_MS);
	await writeWeek(h, week);
	return h.engine.backup();
}

/** The true lock of each object a snapshot needs, asked of the destination (not the index). */
export async function trueLocks(h: Harness, ref: SnapshotRef): Promise<Map<string, Date | undefined>> {
	const open = await h.engine.open();
	const objects = await collectSnapshotObjects(open.repository, ref, metadataFor(open.repository));
	const locks = new Map<string, Date | undefined>();
	for (const key of objects.keys) {
		const version = await open.repository.ownVersion(key);
		const head = version ? await open.repository.destination.head(key, version) : undefined;
		locks.set(key, head?.lock?.until);
	}
	return locks;
}
