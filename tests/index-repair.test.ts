import { appendFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Destination, SnapshotRef } from "@holdfast/core";
import { collectSnapshotObjects, MemoryLogger, metadataFor, Repository } from "@holdfast/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { recoverFromPackHeaders } from "../packages/core/src/repository/index-recovery.js";
import { s3, TEST_ENV, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { holdfast } from "./support/cli.js";
import { createHarness, type Harness, setConfig, tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";
import { type Described, describeTree, pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

const RECOVERED = /recovered from their headers/;

/** Three snapshots of a changing tree in 1 MiB packs; each snapshot's tree as it was backed up. */
async function threeSnapshots(h: Harness): Promise<{ id: string; tree: Record<string, Described> }[]> {
	const src = join(h.dir, "src");
	await mkdir(join(src, "docs"), { recursive: true });
	await writeFile(join(src, "a.bin"), pseudoRandom(1_200_000, 1));
	await writeFile(join(src, "b.bin"), pseudoRandom(1_300_000, 2));
	await writeFile(join(src, "docs/c.txt"), "notes\n".repeat(500));
	await h.engine.init();
	const out: { id: string; tree: Record<string, Described> }[] = [];
	const backup = async () => {
		const result = await h.engine.backup();
		out.push({ id: result.snapshot?.id as string, tree: await describeTree(src) });
		h.clock.advance(86_400_000);
	};
	await backup();
	await writeFile(join(src, "d.bin"), pseudoRandom(1_100_000, 3));
	await appendFile(join(src, "docs/c.txt"), "more notes\n");
	await backup();
	await rm(join(src, "a.bin"));
	await writeFile(join(src, "e.bin"), pseudoRandom(900_000, 4));
	await backup();
	return out;
}

/** The index object that lists the most packs, and those packs. */
async function biggestIndex(h: Harness): Promise<{ key: string; packs: string[] }> {
	const { repository } = await h.engine.open();
	const [key, packs] = [...repository.index.listed].sort((a, b) => b[1].length - a[1].length)[0] as [string, string[]];
	return { key, packs };
}

/** Ruins every version of `key` as a disk fault or an attacker would: the real one's bytes flipped, a garbage one on top. */
async function damageEveryVersion(h: Harness, key: string): Promise<void> {
	const dir = join(h.dir, "repo", "objects", `${key}.versions`);
	for (const name of (await readdir(dir)).filter((f) => f.endsWith(".data"))) {
		const bytes = await readFile(join(dir, name));
		for (let i = 0; i < bytes.length; i += 7) bytes[i] = (bytes[i] as number) ^ 0xff;
		await writeFile(join(dir, name), bytes);
	}
	await (await h.engine.open()).destination.put(key, Buffer.from("encrypted by ransomware"));
}

/** The destination with every `listVersions` prefix recorded (listing is billed; data/ is the big one). */
function countingListings(inner: Destination): { destination: Destination; prefixes: string[] } {
	const prefixes: string[] = [];
	const destination = new Proxy(inner, {
		get(target, property) {
			if (property === "listVersions") {
				return (prefix: string) => {
					prefixes.push(prefix);
					return target.listVersions(prefix);
				};
			}
			const value = Reflect.get(target, property, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	return { destination, prefixes };
}

/** A repository opened afresh (no catalog) over a listing-counting destination, with every snapshot's objects collected. */
async function freshOpen(h: Harness) {
	const counted = countingListings((await h.engine.open()).destination);
	const logger = new MemoryLogger("debug");
	const repository = await Repository.open("correct horse", { destination: counted.destination, clock: h.clock, logger });
	try {
		await repository.loadIndex();
		const missing: string[] = [];
		const refs: SnapshotRef[] = await repository.listSnapshots();
		for (const ref of refs) missing.push(...(await collectSnapshotObjects(repository, ref, metadataFor(repository))).missing);
		return { dataListings: counted.prefixes.filter((p) => p.startsWith("data/")), missing, logger, snapshots: refs.length };
	} finally {
		await repository.close();
	}
}

const warnings = (h: Harness) => h.logger.lines.filter((l) => l.level === "warn").map((l) => l.line);

describe("a damaged index object", () => {
	it("loses no snapshot whose packs are intact: restore and check fall back to pack headers, repair index makes it last", async () => {
		harness = await createHarness({ inMemory: true, sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 1 }) }) });
		const snapshots = await threeSnapshots(harness);
		const damaged = await biggestIndex(harness);
		expect(damaged.packs.length).toBeGreaterThanOrEqual(2);
		// A healthy repository never lists data/ to load its index or walk its snapshots.
		expect((await freshOpen(harness)).dataListings).toEqual([]);

		await damageEveryVersion(harness, damaged.key);
		await harness.reopen({ freshCatalog: true });

		for (const snapshot of snapshots) {
			const before = harness.logger.lines.length;
			const target = join(harness.dir, `restore-${snapshot.id}`);
			await harness.engine.restore(snapshot.id, { target });
			expect(await describeTree(join(target, "src"))).toEqual(snapshot.tree);
			const recovered = harness.logger.lines.slice(before).filter((l) => RECOVERED.test(l.line));
			expect(recovered).toHaveLength(1);
			expect(recovered[0]?.line).toContain(`${damaged.packs.length} pack(s)`);
			expect(recovered[0]?.line).toContain("holdfast repair index");
		}
		expect(warnings(harness).some((w) => w.startsWith(`warning: ${damaged.key}: no version of it verifies`))).toBe(true);

		const report = await harness.engine.check(undefined, { readDataPercent: 100 });
		// No data is lost, but the damaged index object is an error until the repair stands for it.
		expect(report.errors).toEqual([expect.stringMatching(new RegExp(`^${damaged.key}: .*holdfast repair index`))]);
		expect(report.ok).toBe(false);
		expect(report.packsRead).toBeGreaterThanOrEqual(damaged.packs.length);
		expect(report.indexRecovery).toMatchObject({
			unreadableIndexes: [damaged.key],
			packsScanned: damaged.packs.length,
			packsRecovered: damaged.packs.length,
			unreadablePacks: [],
		});
		expect(report.indexRecovery?.blobsRecovered).toBeGreaterThanOrEqual(damaged.packs.length);

		// Before the repair a fresh open must list data/, once, to find what the damaged object listed.
		const unrepaired = await freshOpen(harness);
		expect(unrepaired.dataListings).toEqual(["data/"]);
		expect(unrepaired.missing).toEqual([]);

		const dry = await harness.engine.repairIndex(undefined, { dryRun: true });
		expect(dry).toMatchObject({ dryRun: true, wouldWrite: true, written: undefined, packsRecovered: damaged.packs.length });
		expect((await freshOpen(harness)).dataListings).toEqual(["data/"]);

		const repaired = await harness.engine.repairIndex();
		expect(repaired.written).toMatch(/^index\/[0-9a-f]{64}$/);
		expect(repaired).toMatchObject({
			packsScanned: damaged.packs.length,
			packsRecovered: damaged.packs.length,
			blobsRecovered: report.indexRecovery?.blobsRecovered,
			rebuiltIndexes: [damaged.key],
			unreadablePacks: [],
		});
		const { repository } = await harness.engine.open();
		expect(repository.index.lockUntil(repaired.written as string)?.toISOString()).toBe(
			new Date(harness.clock.now().getTime() + 90 * 86_400_000).toISOString(),
		);
		const head = await repository.destination.head(repaired.written as string);
		expect(head?.lock?.until.toISOString()).toBe(repaired.lockUntil);

		const after = await freshOpen(harness);
		expect(after.dataListings).toEqual([]);
		expect(after.missing).toEqual([]);
		expect(after.snapshots).toBe(3);
		expect(after.logger.lines.some((l) => RECOVERED.test(l.line))).toBe(false);
		expect((await harness.engine.check(undefined, { readDataPercent: 0 })).ok).toBe(true);

		await harness.reopen({ freshCatalog: true });
		const before = harness.logger.lines.length;
		const target = join(harness.dir, "after-repair");
		await harness.engine.restore(snapshots[0]?.id as string, { target });
		expect(await describeTree(join(target, "src"))).toEqual(snapshots[0]?.tree);
		expect(harness.logger.lines.slice(before).some((l) => l.level === "warn")).toBe(false);
		// A second repair finds nothing left to relist and writes nothing.
		expect(await harness.engine.repairIndex()).toMatchObject({ wouldWrite: false, written: undefined, packsScanned: 0 });
	});

	it("a damaged pack is still reported as damaged, with the files it hurts, whether or not its index object is", async () => {
		harness = await createHarness({ inMemory: true, sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 1 }) }) });
		await threeSnapshots(harness);
		const damaged = await biggestIndex(harness);
		const { repository } = await harness.engine.open();
		// Flip one bit inside a file's blob in a pack the damaged index object lists (a tree's
		// blob would take its snapshot's listing with it, a different report).
		const [blobId, location] = [...repository.index.blobs].find(
			([, l]) => damaged.packs.includes(l.packKey) && l.type === "data",
		) as [string, { offset: number; packKey: string }];
		const packKey = location.packKey;
		const dir = join(harness.dir, "repo", "objects", `${packKey}.versions`);
		const file = join(dir, (await readdir(dir)).find((f) => f.endsWith(".data")) as string);
		const bytes = await readFile(file);
		bytes[location.offset + 40] = (bytes[location.offset + 40] as number) ^ 0x01;
		await writeFile(file, bytes);

		const intact = await harness.engine.check(undefined, { readDataPercent: 100 });
		expect(intact.indexRecovery).toBeUndefined();
		const intactLine = intact.errors.find((e) => e.startsWith(packKey));
		expect(intactLine).toMatch(/damaged blob/);

		await damageEveryVersion(harness, damaged.key);
		await harness.reopen({ freshCatalog: true });
		const report = await harness.engine.check(undefined, { readDataPercent: 100 });
		expect(report.ok).toBe(false);
		expect(report.indexRecovery?.packsRecovered).toBe(damaged.packs.length);
		expect(report.errors).toEqual([expect.stringContaining(`${damaged.key}: `), intactLine]);
		const open = await harness.engine.open();
		expect(open.repository.index.blobs.get(blobId)?.packKey).toBe(packKey);
	});
});

describe("packs whose header is damaged as well", () => {
	it("are named, their blobs stay unknown, and everything else is recovered", async () => {
		harness = await createHarness({ inMemory: true, sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 1 }) }) });
		const snapshots = await threeSnapshots(harness);
		const damaged = await biggestIndex(harness);
		const lost = damaged.packs[0] as string;
		const dir = join(harness.dir, "repo", "objects", `${lost}.versions`);
		const file = join(dir, (await readdir(dir)).find((f) => f.endsWith(".data")) as string);
		const bytes = await readFile(file);
		// Inside the sealed header, just before the 4-byte trailer.
		bytes[bytes.length - 10] = (bytes[bytes.length - 10] as number) ^ 0x01;
		await writeFile(file, bytes);
		await damageEveryVersion(harness, damaged.key);
		await harness.reopen({ freshCatalog: true });

		const report = await harness.engine.check(undefined, { readDataPercent: 0 });
		expect(report.indexRecovery).toMatchObject({
			packsScanned: damaged.packs.length,
			packsRecovered: damaged.packs.length - 1,
			unreadablePacks: [lost],
		});
		expect(report.errors.length).toBeGreaterThan(0);
		expect(report.errors.every((e) => /is in no pack/.test(e) || e.startsWith(`${damaged.key}: `))).toBe(true);
		// Files (or folders) whose blobs are in no readable pack are named as lost and the rest is
		// restored; when the lost pack holds the snapshot's top tree, there is nothing to walk.
		const restored = await harness.engine
			.restore(snapshots[0]?.id as string, { target: join(harness.dir, "r") })
			.catch((error: Error) => error);
		if (restored instanceof Error) expect(restored.message).toMatch(/is in no pack of the index/);
		else {
			expect(restored.summary.lost.length).toBeGreaterThan(0);
			expect(harness.logger.lines.map((l) => l.line)).toContainEqual(
				expect.stringMatching(/: (not restored|folder not restored, its tree cannot be read): .*is in no pack of the index/),
			);
		}

		const repaired = await harness.engine.repairIndex();
		expect(repaired).toMatchObject({ packsRecovered: damaged.packs.length - 1, unreadablePacks: [lost] });
		expect(repaired.written).toMatch(/^index\//);
	});
});

describe.skipIf(!s3)("pack headers on the real S3 server", () => {
	it("rebuild the index entries exactly, with the store's locks, passing over a forged latest version", async () => {
		const bucket = uniqueBucket("headers");
		harness = await createHarness({
			inMemory: true,
			plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-b2"],
			env: TEST_ENV(),
			start: new Date().toISOString(),
			sets: (dir) => ({
				main: setConfig(dir, {
					destination: {
						type: "s3",
						endpoint: s3?.endpoint as string,
						bucket,
					},
					retention: { days: 1, mode: "compliance" },
					packSizeMiB: 1,
				}),
			}),
		} as Parameters<typeof createHarness>[0]);
		await writeFile(join(harness.dir, "src/a.bin"), pseudoRandom(1_500_000, 7));
		await writeFile(join(harness.dir, "src/b.txt"), "b\n");
		await harness.engine.init();
		await harness.engine.backup();
		const { repository, destination } = await harness.engine.open();
		const packs = [...repository.index.packs.keys()].sort();
		expect(packs.length).toBeGreaterThanOrEqual(2);
		// What an attacker with the backup's keys can do to a pack: a new latest version of garbage.
		await destination.put(packs[0] as string, Buffer.from("encrypted by ransomware"));

		const found = await recoverFromPackHeaders(destination, repository.keys, () => false);
		expect(found.unreadable).toEqual([]);
		expect(found.packs.map((p) => p.key)).toEqual(packs);
		for (const pack of found.packs) {
			expect(pack.version).toBe(repository.index.versions.get(pack.key));
			expect(pack.until).toBe(repository.index.lockUntil(pack.key)?.toISOString());
			const indexed = [...repository.index.blobs].filter(([, l]) => l.packKey === pack.key);
			expect(pack.blobs.map((b) => b[1]).sort()).toEqual(indexed.map(([id]) => id).sort());
			for (const [type, id, offset, length, rawLength] of pack.blobs) {
				expect(repository.index.blobs.get(id)).toEqual({
					type: type === 1 ? "tree" : "data",
					packKey: pack.key,
					offset,
					length,
					rawLength,
				});
			}
		}
	});
});

describe("holdfast repair index, spawned", () => {
	it("relists packs of damaged index objects from their headers; --dry-run writes nothing", async () => {
		const dir = await tempDir("holdfast-cli-repair-");
		await mkdir(join(dir, "data"), { recursive: true });
		await writeFile(join(dir, "data/report.pdf"), pseudoRandom(300_000, 11));
		await writeFile(join(dir, "data/notes.txt"), "notes\n");
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
catalog: sqlite://./.holdfast/catalog.sqlite
password: { env: HOLDFAST_PASSWORD }
sets:
  docs:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30, mode: compliance }
`,
		);
		// The repository and its snapshot are made in this process: the commands under test are the ones after the damage.
		await projectEngine(dir)((engine) => engine.init());
		await projectEngine(dir)((engine) => engine.backup());
		// Every index object ruined, and the catalog (which caches them) gone.
		const indexDir = join(dir, "repo/objects/index");
		for (const entry of await readdir(indexDir)) {
			for (const name of (await readdir(join(indexDir, entry))).filter((f) => f.endsWith(".data"))) {
				await writeFile(join(indexDir, entry, name), "garbage");
			}
		}
		await rm(join(dir, ".holdfast"), { recursive: true, force: true });

		const check = holdfast(dir, ["check", "--read-data"]);
		expect(check.stdout).toMatch(
			/^note: \d+ index object\(s\) verify under no version; \d+ pack\(s\) .* recovered from their headers/m,
		);
		expect(check.stdout).toMatch(/^error: index\/[0-9a-f]{64}: .*holdfast repair index/m);
		expect(check.stdout).not.toMatch(/^error: (?!index\/)/m);

		const dry = holdfast(dir, ["repair", "index", "--dry-run", "--json"]);
		expect(dry.code).toBe(0);
		const planned = JSON.parse(dry.stdout);
		expect(planned).toMatchObject({ dryRun: true, indexObject: null, unreadablePacks: [] });
		expect(planned.packsScanned).toBeGreaterThan(0);
		expect(planned.packsRecovered).toBe(planned.packsScanned);
		expect(planned.blobsRecovered).toBeGreaterThanOrEqual(3);
		expect(planned.rebuiltIndexes).toHaveLength((await readdir(indexDir)).length);
		expect(dry.stderr).toMatch(/warning: .*recovered from their headers.*holdfast repair index/);

		const repair = holdfast(dir, ["repair", "index"]);
		expect(repair.code).toBe(0);
		expect(repair.stdout).toContain(`packs scanned: ${planned.packsScanned}`);
		expect(repair.stdout).toContain(`packs recovered: ${planned.packsRecovered}`);
		expect(repair.stdout).toContain(`blobs recovered: ${planned.blobsRecovered}`);
		expect(repair.stdout).toMatch(/wrote index\/[0-9a-f]{64}, locked until /);

		await rm(join(dir, ".holdfast"), { recursive: true, force: true });
		const restore = holdfast(dir, ["restore", "latest", "--target", "out"]);
		expect(restore.code).toBe(0);
		expect(restore.stderr).not.toMatch(RECOVERED);
		expect(await describeTree(join(dir, "out/data"))).toEqual(await describeTree(join(dir, "data")));
		expect(holdfast(dir, ["repair", "index"]).stdout).toContain("nothing to repair");
		await rm(dir, { recursive: true, force: true });
	});
});
