import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS, definePlugin, type GroomResult, type PluginDefinition, type SetConfig } from "@holdfast/core";
import { collectSnapshotObjects, metadataFor } from "@holdfast/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

/**
 * A backup and a groom at once, from two machines (two engines on one repository): the
 * groom runs from inside the backup's `upload` hook, after the backup decided what it reuses
 * and before it writes its snapshot.
 */
const START = new Date("2030-01-06T02:00:00Z");
const HOUR_MS = 3_600_000;
const harnesses: Harness[] = [];
let during: (() => Promise<void>) | undefined;
afterEach(async () => {
	during = undefined;
	for (const h of harnesses.splice(0).reverse()) await h.close();
});

const midBackup = definePlugin({
	name: "mid-backup",
	version: "1.0.0",
	engine: "^0.1.0",
	activate(context) {
		context.hooks.upload.tapPromise("mid-backup", async () => {
			await during?.();
		});
	},
});

const PLUGINS = ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-groom"];

function set(dir: string): SetConfig {
	return setConfig(dir, {
		retention: { days: 1, mode: "compliance" },
		groom: { match: "retention", graceHours: 6 },
	});
}

/**
 * Two backups a day apart: the first of `a.bin` alone, the second of `c.bin` alone, so once
 * the first leaves the set the pack holding a.bin's blob is needed by nothing. Returns that
 * pack and the two harnesses: `backer` backs up (with the hook), `groomer` grooms.
 */
async function world(): Promise<{ backer: Harness; groomer: Harness; aPack: string }> {
	const backer = await createHarness({
		start: START.toISOString(),
		plugins: [...PLUGINS, midBackup.name],
		extraBuiltins: new Map([[midBackup.name, midBackup as PluginDefinition]]),
		sets: (dir) => ({ main: set(dir) }),
	});
	harnesses.push(backer);
	const groomer = await createHarness({ start: START.toISOString(), plugins: PLUGINS, sets: () => ({ main: set(backer.dir) }) });
	harnesses.push(groomer);
	await backer.engine.init();
	await writeFile(join(backer.dir, "src/a.bin"), pseudoRandom(300_000, 1));
	await backer.engine.backup();
	const index = (await backer.engine.open()).repository.index;
	const aPack = [...index.blobs.values()].find((l) => l.type === "data")?.packKey as string;
	backer.clock.set(START.getTime() + 2 * DAY_MS);
	await rm(join(backer.dir, "src/a.bin"));
	await writeFile(join(backer.dir, "src/c.bin"), pseudoRandom(300_000, 2));
	await backer.engine.backup();
	// The third backup has a.bin back, byte for byte: its blob is in the pack the first backup wrote.
	backer.clock.set(START.getTime() + 3 * DAY_MS);
	await writeFile(join(backer.dir, "src/a.bin"), pseudoRandom(300_000, 1));
	return { backer, groomer, aPack };
}

async function groomAt(groomer: Harness, at: number): Promise<GroomResult> {
	groomer.clock.set(at);
	return groomer.engine.groom();
}

/** Restores the snapshot on a machine that lost its catalog, and checks every pack. */
async function restoresBitExactly(h: Harness, id: string): Promise<void> {
	const expected = await describeTree(join(h.dir, "src"));
	await h.reopen({ freshCatalog: true });
	const target = join(h.dir, `restore-${id.slice(0, 8)}`);
	await h.engine.restore(id, { target });
	expect(await describeTree(join(target, "src"))).toEqual(expected);
	const report = await h.engine.check(undefined, { readDataPercent: 100 });
	expect(report.errors).toEqual([]);
}

describe("a groom while a backup runs", () => {
	it("the backup stores again what the groom condemned under it; the next groom deletes only what no snapshot needs", async () => {
		const { backer, groomer, aPack } = await world();
		const t = START.getTime() + 3 * DAY_MS;
		let marking: GroomResult | undefined;
		during = async () => {
			marking = await groomAt(groomer, t);
		};
		const result = await backer.engine.backup();
		// The groom forgot the first snapshot and marked its pack, which this backup had already decided to reuse.
		expect(marking?.forgotten).toHaveLength(1);
		expect(marking?.marked.keys).toContain(aPack);
		expect(marking?.deleted.keys).toEqual([]);
		expect(backer.logger.lines.some((l) => /1 blob\(s\) in packs grooming condemned .* stored again/.test(l.line))).toBe(true);
		const id = result.snapshot?.id as string;
		expect(id).toBeDefined();

		const deleting = await groomAt(groomer, t + 7 * HOUR_MS);
		expect(deleting.deleted.keys).toContain(aPack);
		const open = await groomer.engine.open();
		const ref = (await open.repository.listSnapshots()).find((r) => r.id === id);
		expect(ref).toBeDefined();
		const needs = await collectSnapshotObjects(open.repository, ref as NonNullable<typeof ref>, metadataFor(open.repository));
		expect(needs.missing).toEqual([]);
		for (const key of needs.keys) expect(deleting.deleted.keys, key).not.toContain(key);
		await restoresBitExactly(backer, id);
	});

	it("a backup that loads an index with a condemned pack stores the blob anew instead of reusing it", async () => {
		const { backer, groomer, aPack } = await world();
		const t = START.getTime() + 3 * DAY_MS;
		expect((await groomAt(groomer, t)).marked.keys).toContain(aPack);
		const result = await backer.engine.backup();
		// a.bin's blob is stored again; c.bin, unchanged, is reused from its live pack.
		expect(result.summary.blobs.new).toBe(1);
		expect(backer.logger.lines.some((l) => l.line.includes("stored again"))).toBe(false);
		const deleting = await groomAt(groomer, t + 7 * HOUR_MS);
		expect(deleting.deleted.keys).toContain(aPack);
		await restoresBitExactly(backer, result.snapshot?.id as string);
	});

	it("a backup whose reused pack was already deleted fails in one line and writes no snapshot", async () => {
		const { backer, groomer, aPack } = await world();
		const t = START.getTime() + 3 * DAY_MS;
		let deleting: GroomResult | undefined;
		during = async () => {
			await groomAt(groomer, t);
			// The backup has run longer than the grace: a second groom deletes what the first marked.
			deleting = await groomAt(groomer, t + 7 * HOUR_MS);
		};
		const error = await backer.engine.backup().catch((e: unknown) => e);
		expect(deleting?.deleted.keys).toContain(aPack);
		expect((error as Error).message).toMatch(
			new RegExp(`^no snapshot written: grooming deleted ${aPack}, which this backup reuses, while the backup ran`),
		);
		expect((error as Error).message).not.toContain("\n");
		during = undefined;
		// The groom forgot the first backup; the second is all there is.
		expect((await backer.engine.snapshots()).map((r) => r.snapshot.time)).toEqual([
			new Date(START.getTime() + 2 * DAY_MS).toISOString(),
		]);
		// The next run stores a.bin anew and restores.
		backer.clock.set(t + 8 * HOUR_MS);
		const again = await backer.engine.backup();
		await restoresBitExactly(backer, again.snapshot?.id as string);
	});
});
