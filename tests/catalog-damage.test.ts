import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdir, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MemoryLogger } from "@holdfast/core/testing";
import Database from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";
import { holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { inProject } from "./support/project-session.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

/**
 * The catalog is a cache: whatever happens to the file between runs, every command works,
 * the damaged file is kept aside, and no cached value can make a backup skip data.
 */

const CONFIG = `plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
  - "@holdfast/plugin-retention-planner"
catalog: sqlite://./.holdfast/catalog.sqlite
password: { env: HOLDFAST_PASSWORD }
sets:
  docs:
    sources:
      - { type: fs, path: ./data }
    destination: { type: fs, path: ./repo }
    retention: { days: 30, mode: compliance }
    schedule: { every: 7d }
    planner: { strategy: auto, missedRuns: 0, slackDays: 14 }
`;

const DAMAGE_LINE =
	/catalog \S+catalog\.sqlite is damaged \(.+\); it is only a cache: kept aside as catalog\.sqlite\.damaged-\S+ and rebuilt from the destination/;

function run(dir: string, args: string[]) {
	const result = holdfast(dir, args);
	// Never a stack trace, whatever the catalog holds.
	expect(result.stderr).not.toMatch(/\n\s+at /);
	return result;
}

async function project(prefix: string) {
	const dir = await tempDir(prefix);
	await mkdir(join(dir, "data/sub"), { recursive: true });
	await writeFile(join(dir, "data/a.bin"), pseudoRandom(200_000, 1));
	await writeFile(join(dir, "data/sub/b.txt"), "b\n".repeat(1000));
	await writeFile(join(dir, "holdfast.yaml"), CONFIG);
	// The repository and a first snapshot, made in this process: what is tested is the commands after the damage.
	await inProject(dir, {}, async ({ engine }) => {
		await engine.init();
		expect((await engine.backup()).snapshot).toBeDefined();
	});
	return dir;
}

const catalogOf = (dir: string) => join(dir, ".holdfast/catalog.sqlite");
const asideIn = (dir: string) => readdirSync(join(dir, ".holdfast")).filter((name) => name.includes(".damaged-"));

/**
 * The latest snapshot restores to exactly what `data/` holds, and a check reading every pack is
 * clean and quiet about the catalog: each a run of its own over the catalog the commands left,
 * in this process (what they prove is the engine's; the commands under test are the ones before).
 */
async function provesLatest(dir: string, round: number) {
	const target = join(dir, `out-${round}`);
	const restoreSaid = await inProject(dir, {}, async ({ engine, logger }) => {
		expect((await engine.restore("latest", { target })).summary.partial).toBeFalsy();
		return said(logger);
	});
	expect(restoreSaid).not.toMatch(/in no pack/);
	expect(await describeTree(join(target, "data"))).toEqual(await describeTree(join(dir, "data")));
	const checkSaid = await inProject(dir, {}, async ({ engine, logger }) => {
		const report = await engine.check(undefined, { readDataPercent: 100 });
		expect(report.errors).toEqual([]);
		expect(report.ok).toBe(true);
		return said(logger);
	});
	// The catalog rebuilt by the damaged run is healthy: later runs say nothing about it.
	expect(checkSaid).not.toMatch(/catalog/);
}

/** Everything a run logged, as its stderr would show it. */
const said = (logger: MemoryLogger) => logger.lines.map((entry) => entry.line).join("\n");

/** Rows of the catalog's keyv table whose key starts with `prefix`. */
function rows(path: string, prefix: string): { key: string; value: string }[] {
	const db = new Database(path);
	try {
		return db.prepare("SELECT key, value FROM keyv WHERE key LIKE ?").all(`${prefix}%`) as { key: string; value: string }[];
	} finally {
		db.close();
	}
}

function writeRows(path: string, entries: { key: string; value: string }[]) {
	const db = new Database(path);
	try {
		const put = db.prepare(
			"INSERT INTO keyv (key, value, expires) VALUES (?, ?, NULL) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
		);
		db.transaction(() => {
			for (const { key, value } of entries) put.run(key, value);
		})();
	} finally {
		db.close();
	}
}

/** The files beside the catalog that hold its byte values (an index object's packed blobs): each a MAC, then the bytes. */
function byteFiles(dir: string): string[] {
	const folder = join(dir, ".holdfast/catalog.sqlite.values/holdfast");
	return readdirSync(folder).map((name) => join(folder, name));
}

/** Rewrites the JSON inside a sealed cached value, keeping its MAC: what a bit flip or a forger would leave. */
function tamper(value: string, change: (inner: FolderValue) => void): string {
	const { head, j } = sealedJson(value);
	const inner = JSON.parse(j) as FolderValue;
	change(inner);
	return `${head}${JSON.stringify(inner)}`;
}

/** A sealed row split into what precedes the value's JSON (tag, expiry, MAC) and the JSON itself. */
function sealedJson(value: string): { head: string; j: string } {
	const macEnd = value.indexOf("\n", value.indexOf("\n", value.indexOf("\n") + 1) + 1);
	expect(value.startsWith("hf-cache/1\n") && macEnd > 0, value.slice(0, 40)).toBe(true);
	return { head: value.slice(0, macEnd + 1), j: value.slice(macEnd + 1) };
}

/** A folder's file states as the catalog keeps them: by name, [size, mtime, ctime, inode, blobs]. */
type FolderValue = { v: number; f: Record<string, [number, string, string, string, string[]]> };

/** A file state claiming `file` as it is now (size, times, inode), with the blobs the catalog had for it. */
function claimUnchanged(dir: string, file: string) {
	const info = statSync(join(dir, "data", file), { bigint: true });
	const name = file.split("/").at(-1) as string;
	return (inner: FolderValue) => {
		const state = inner.f[name] as [number, string, string, string, string[]];
		expect(state).toBeDefined();
		inner.f[name] = [Number(info.size), info.mtimeNs.toString(), info.ctimeNs.toString(), info.ino.toString(), state[4]];
	};
}

/** The end of the key of the folder that holds `file`: its path below the root, in base64. */
const folderKeySuffix = (file: string) => `:${Buffer.from(file.split("/").slice(0, -1).join("/")).toString("base64")}`;

describe("a damaged catalog file", () => {
	let dir: string;
	let round = 0;
	beforeAll(async () => {
		dir = await project("holdfast-catalog-damage-");
	});

	/** Damages the catalog, changes the data, then backs up: one warning line, the file kept aside, the result proven. */
	async function survives(damage: (path: string) => Promise<void>, first: string[] = ["backup"]) {
		round++;
		const before = asideIn(dir).length;
		await writeFile(join(dir, `data/round-${round}.txt`), `round ${round}\n`);
		await damage(catalogOf(dir));
		const result = run(dir, first);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stderr.split("\n").filter((line) => DAMAGE_LINE.test(line))).toHaveLength(1);
		expect(result.stderr).not.toMatch(/in no pack/);
		expect(asideIn(dir).length).toBe(before + 1);
		if (first[0] !== "backup") expect(run(dir, ["backup"]).code).toBe(0);
		await provesLatest(dir, round);
	}

	it("is replaced when it is not a database at all", async () => {
		await survives(async (path) => writeFile(path, "this is not a database, just text someone saved here\n".repeat(200)));
		// Kept aside as it was, never deleted, so the user can look.
		const aside = asideIn(dir).find((name) => !name.endsWith("-wal") && !name.endsWith("-shm")) as string;
		expect(readFileSync(join(dir, ".holdfast", aside), "utf8")).toContain("this is not a database");
	});

	it("is replaced when truncated halfway", async () => {
		await survives(async (path) => truncate(path, Math.floor(statSync(path).size / 2) + 100));
	});

	it("is replaced when its pages are overwritten with garbage", async () => {
		await survives(async (path) => {
			const bytes = readFileSync(path);
			// Page 1 keeps its header; every page after it (the table's b-tree) becomes noise.
			pseudoRandom(bytes.length - 4096, 7).copy(bytes, 4096);
			writeFileSync(path, bytes);
		});
	});

	it("is replaced when its header is damaged, found by a read-only command first", async () => {
		await survives(
			async (path) => {
				const bytes = readFileSync(path);
				bytes.write("NOT SQLITE", 0);
				writeFileSync(path, bytes);
			},
			["snapshots"],
		);
	});

	it("is replaced when something that cannot be opened as a file stands in its place", async () => {
		await survives(async (path) => {
			await rm(path);
			await mkdir(path);
			await writeFile(join(path, "stray"), "x");
		});
	});

	it("is simply a fresh catalog when zero bytes long (SQLite reads it as empty), without a warning", async () => {
		const before = asideIn(dir).length;
		await writeFile(catalogOf(dir), "");
		await writeFile(join(dir, "data/zero.txt"), "zero\n");
		const result = run(dir, ["backup", "--json"]);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stderr).not.toMatch(/catalog/);
		expect(asideIn(dir).length).toBe(before);
		await provesLatest(dir, ++round);
	});
});

describe("cached values that are damaged or not this repository's", () => {
	// One repository through the rounds below, in order: each round tampers with what the last run cached.
	let dir: string;
	beforeAll(async () => {
		dir = await project("holdfast-catalog-poison-");
	});

	it("a file state claiming a changed file is unchanged does not verify: the file is read and stored", async () => {
		const path = catalogOf(dir);
		// Same size, new bytes: only the catalog's word says the old blobs still describe it.
		await writeFile(join(dir, "data/a.bin"), pseudoRandom(200_000, 2));
		const [state] = rows(path, "holdfast:folder:").filter((row) => row.key.endsWith(folderKeySuffix("a.bin")));
		expect(state).toBeDefined();
		writeRows(path, [{ key: state?.key as string, value: tamper(state?.value as string, claimUnchanged(dir, "a.bin")) }]);

		const backup = run(dir, ["backup", "--json"]);
		expect(backup.code, backup.stderr).toBe(0);
		expect(JSON.parse(backup.stdout).files).toMatchObject({ new: 1, changed: 0, unchanged: 1 });
		expect(backup.stderr.match(/catalog: a cached file state did not verify/g)).toHaveLength(1);
		await provesLatest(dir, 1);
	});

	it("an index record with a pack's blobs dropped does not verify: no 'in no pack', nothing skipped", async () => {
		const path = catalogOf(dir);
		// The index loads from its packed form: each pack's blob IDs and numbers as bytes.
		const files = byteFiles(dir);
		expect(files.length).toBeGreaterThan(0);
		expect(rows(path, "holdfast:index-head:").length).toBe(files.length);
		for (const file of files) {
			// The same packs, each now holding no blob: a well-formed value behind a MAC that no longer fits.
			const bytes = readFileSync(file);
			const packs = new Uint32Array(Uint8Array.from(bytes.subarray(32, 36)).buffer)[0] as number;
			const emptied = new Uint32Array([packs, ...new Array<number>(packs * 2).fill(0)]);
			writeFileSync(file, Buffer.concat([bytes.subarray(0, 32), Buffer.from(emptied.buffer)]));
		}
		await writeFile(join(dir, "data/new.bin"), pseudoRandom(150_000, 3));
		const backup = run(dir, ["backup", "--json"]);
		expect(backup.code, backup.stderr).toBe(0);
		expect(backup.stderr).not.toMatch(/in no pack/);
		expect(backup.stderr.match(/catalog: a cached index object did not verify/g)).toHaveLength(1);
		// Read from the destination, the index knows the unchanged files' blobs: reused, not stored again.
		expect(JSON.parse(backup.stdout).files).toMatchObject({ new: 1, changed: 0, unchanged: 2 });
		await provesLatest(dir, 2);
	});

	it("values under an older layout (no tag) are misses, with no warning", async () => {
		const path = catalogOf(dir);
		await writeFile(join(dir, "data/a.bin"), pseudoRandom(200_000, 4));
		const [state] = rows(path, "holdfast:folder:").filter((row) => row.key.endsWith(folderKeySuffix("a.bin")));
		const legacy = JSON.parse(sealedJson(state?.value as string).j) as FolderValue;
		claimUnchanged(dir, "a.bin")(legacy);
		writeRows(path, [{ key: state?.key as string, value: JSON.stringify({ value: legacy, expires: null }) }]);

		const backup = run(dir, ["backup", "--json"]);
		expect(backup.code, backup.stderr).toBe(0);
		// The top folder's states are a miss as a whole: a.bin and new.bin are read again, sub/b.txt is not.
		expect(JSON.parse(backup.stdout).files).toMatchObject({ new: 2, changed: 0, unchanged: 1 });
		expect(backup.stderr).not.toMatch(/catalog/);
		await provesLatest(dir, 3);
	});

	it("a catalog another repository left at the same path is not trusted, even with keys and states made to fit", async () => {
		const other = await project("holdfast-catalog-other-");
		const idOf = (path: string) => (rows(path, "holdfast:folder:")[0]?.key.split(":")[2] ?? "") as string;
		const [otherId, thisId] = [idOf(catalogOf(other)), idOf(catalogOf(dir))];
		expect(otherId).not.toBe(thisId);
		// This repository's data changes in place; the other catalog is copied over this one, relabeled to fit
		// (repository ID and source path in every key, each file's size, times and inode in its state).
		await writeFile(join(dir, "data/a.bin"), pseudoRandom(200_000, 5));
		await writeFile(join(dir, "data/sub/b.txt"), "c\n".repeat(1000));
		const path = catalogOf(dir);
		await rm(`${path}-wal`, { force: true });
		await rm(`${path}-shm`, { force: true });
		copyFileSync(catalogOf(other), path);
		const relabeled = rows(path, "holdfast:").map(({ key, value }) => {
			const file = ["a.bin", "sub/b.txt"].find(
				(name) => key.startsWith("holdfast:folder:") && key.endsWith(folderKeySuffix(name)),
			);
			return {
				key: key.replace(otherId, thisId).replace(other, dir),
				value: file ? tamper(value, claimUnchanged(dir, file)) : value,
			};
		});
		const db = new Database(path);
		db.exec("DELETE FROM keyv");
		db.close();
		writeRows(path, relabeled);

		const backup = run(dir, ["backup", "--json"]);
		expect(backup.code, backup.stderr).toBe(0);
		// Neither file counts as unchanged: compared with the last snapshot instead, both changed. new.bin,
		// which the other catalog never saw, is as the last snapshot has it.
		expect(JSON.parse(backup.stdout).files).toMatchObject({ new: 0, changed: 2, unchanged: 1 });
		await provesLatest(dir, 4);
	});
});
