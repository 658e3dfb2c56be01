import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS, EmulatedLocks, isHoldfastError, KEY_PREFIX } from "@holdfast/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { holdfast } from "./support/cli.js";
import { createHarness, type Harness, setConfig, tempDir } from "./support/harness.js";

const START = new Date("2030-01-06T02:00:00Z");
let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

/** Overwrites the one stored version of a key in place: bit rot, not a new version. */
async function damage(repo: string, key: string): Promise<void> {
	const dir = join(repo, "objects", `${key}.versions`);
	for (const name of await readdir(dir)) {
		if (!name.endsWith(".data")) continue;
		const bytes = await readFile(join(dir, name));
		bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0xff;
		await writeFile(join(dir, name), bytes);
	}
}

/** Every key the fs destination holds a version of. */
async function storedKeys(repo: string): Promise<string[]> {
	const keys: string[] = [];
	const walk = async (dir: string, prefix: string) => {
		for (const entry of await readdir(dir, { withFileTypes: true })) {
			if (entry.name.endsWith(".versions")) keys.push(`${prefix}${entry.name.slice(0, -".versions".length)}`);
			else if (entry.isDirectory()) await walk(join(dir, entry.name), `${prefix}${entry.name}/`);
		}
	};
	await walk(join(repo, "objects"), "");
	return keys.sort();
}

/** A failure of the kind a dropped connection gives. */
function connectionReset(): Error {
	return Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
}

/** GETs of keys under the prefixes fail with a connection reset while `failing()` says so. */
function injectResets(prefixes: string[], failing: () => boolean): { injected: () => number } {
	let injected = 0;
	const original = EmulatedLocks.prototype.get;
	vi.spyOn(EmulatedLocks.prototype, "get").mockImplementation(async function (this: EmulatedLocks, key, options) {
		if (prefixes.some((p) => key.startsWith(p)) && failing()) {
			injected++;
			throw connectionReset();
		}
		return original.call(this, key, options);
	});
	return { injected: () => injected };
}

/** Two backups two days apart (the file changed), then time enough for every lock to lapse; keepLast 1. */
async function twoBackups(): Promise<{ first: string; second: string; secondKey: string; repo: string }> {
	harness = await createHarness({
		start: START.toISOString(),
		sets: (dir) => ({
			main: setConfig(dir, {
				retention: { days: 1, mode: "compliance" },
				groom: { match: "retention", keepLast: 1, graceHours: 0 },
			}),
		}),
	});
	const src = join(harness.dir, "src");
	await writeFile(join(src, "first.txt"), "only in the first snapshot\n".repeat(200));
	await harness.engine.init();
	const first = await harness.engine.backup();
	harness.clock.advance(2 * DAY_MS);
	await writeFile(join(src, "first.txt"), "changed for the second snapshot\n".repeat(300));
	const second = await harness.engine.backup();
	harness.clock.advance(30 * DAY_MS);
	return {
		first: first.snapshot?.id as string,
		second: second.snapshot?.id as string,
		secondKey: second.snapshot?.key as string,
		repo: join(harness.dir, "repo"),
	};
}

describe("groom with an object it cannot read", () => {
	it("deletes nothing and names the snapshot object, in a dry run too", async () => {
		const { secondKey, repo } = await twoBackups();
		await damage(repo, secondKey);
		// A machine without the catalog's copy of the snapshot must read the damaged object.
		await harness?.reopen({ freshCatalog: true });
		const before = await storedKeys(repo);
		for (const dryRun of [true, false]) {
			const error = await harness?.engine.groom(undefined, { dryRun }).catch((e: unknown) => e);
			// The groom plugin's error, attributed to it by the core, with the damage as its cause.
			expect(isHoldfastError((error as Error).cause, "CORRUPT"), String(error)).toBe(true);
			expect((error as Error).message).toMatch(
				new RegExp(`^\\[groom\\] groom: nothing deleted: ${secondKey} cannot be read \\(no version of it verifies`),
			);
		}
		expect(await storedKeys(repo)).toEqual(before);
	});

	it("with the snapshot readable, the same repository is groomed (the refusal is the damage's doing)", async () => {
		const { first, second, repo } = await twoBackups();
		await harness?.reopen({ freshCatalog: true });
		const marking = await harness?.engine.groom();
		expect(marking?.forgotten).toEqual([first]);
		expect(marking?.marked.keys).toContain(`${KEY_PREFIX.snapshots}${first}`);
		// graceHours 0: the next groom deletes what this one marked.
		const result = await harness?.engine.groom();
		expect(result?.deleted.keys).toContain(`${KEY_PREFIX.snapshots}${first}`);
		expect(result?.deleted.keys.some((k) => k.startsWith(KEY_PREFIX.data))).toBe(true);
		expect(await storedKeys(repo)).toContain(`${KEY_PREFIX.snapshots}${second}`);
	});

	it("deletes nothing when an index object cannot be read", async () => {
		const { repo } = await twoBackups();
		const indexKeys = (await storedKeys(repo)).filter((k) => k.startsWith(KEY_PREFIX.index));
		await damage(repo, indexKeys.at(-1) as string);
		await harness?.reopen({ freshCatalog: true });
		const before = await storedKeys(repo);
		const error = await harness?.engine.groom().catch((e: unknown) => e);
		expect((error as Error).message).toMatch(/^\[groom\] groom: nothing deleted: index\/[0-9a-f]{64} cannot be read/);
		expect(await storedKeys(repo)).toEqual(before);
	});

	it("deletes nothing when a tree of a kept snapshot cannot be read", async () => {
		const { second, repo } = await twoBackups();
		const open = await harness?.engine.open();
		const ref = (await open?.repository.listSnapshots())?.find((r) => r.id === second);
		const tree = open?.repository.index.blobs.get(ref?.snapshot.tree as string);
		await damage(repo, tree?.packKey as string);
		await harness?.reopen({ freshCatalog: true });
		const before = await storedKeys(repo);
		const error = await harness?.engine.groom().catch((e: unknown) => e);
		expect((error as Error).message).toContain(`groom: nothing deleted: snapshot ${second.slice(0, 12)}: a tree cannot be read`);
		expect(await storedKeys(repo)).toEqual(before);
	});
});

describe("check with an object no version of which verifies", () => {
	it("reports a damaged snapshot object as an error, even when the catalog holds a good copy", async () => {
		const { secondKey, repo } = await twoBackups();
		await damage(repo, secondKey);
		const report = await harness?.engine.check(undefined, { readDataPercent: 100 });
		expect(report?.ok).toBe(false);
		expect(report?.errors.some((e) => e.startsWith(`${secondKey}: no version of it verifies`))).toBe(true);
	});

	it("reports a damaged index object as an error", async () => {
		const { repo } = await twoBackups();
		const indexKey = (await storedKeys(repo)).filter((k) => k.startsWith(KEY_PREFIX.index)).at(-1) as string;
		await damage(repo, indexKey);
		const report = await harness?.engine.check(undefined, { readDataPercent: 0 });
		expect(report?.ok).toBe(false);
		expect(report?.errors.some((e) => e.startsWith(`${indexKey}: no version of it verifies`))).toBe(true);
	});
});

describe("restore latest when the newest snapshot object cannot be read", () => {
	it("fails naming the unreadable object and the newest readable snapshot, for latest and --at", async () => {
		const { first, secondKey, repo } = await twoBackups();
		await damage(repo, secondKey);
		await harness?.reopen({ freshCatalog: true });
		const target = join(harness?.dir as string, "out");
		for (const at of [undefined, new Date(START.getTime() + 3 * DAY_MS)]) {
			const error = await harness?.engine.restore("latest", { target, ...(at ? { at } : {}) }).catch((e: unknown) => e);
			expect(isHoldfastError(error, "CORRUPT"), String(error)).toBe(true);
			expect((error as Error).message).toContain(`${secondKey} cannot be read`);
			expect((error as Error).message).toContain(`the newest readable one is ${first.slice(0, 12)}`);
		}
		// A time before the damaged snapshot was written is answered by the older one.
		const older = await harness?.engine.restore("latest", { target, at: new Date(START.getTime() + DAY_MS) });
		expect(older?.snapshot.id).toBe(first);
	});

	it("latest and --at pick the set's own newest snapshot in a repository shared by several sets", async () => {
		harness = await createHarness({
			start: START.toISOString(),
			sets: (dir) => ({
				office: setConfig(dir),
				laptop: setConfig(dir, { sources: [{ type: "fs", path: join(dir, "src") }] }),
			}),
		});
		await writeFile(join(harness.dir, "src/a.txt"), "a\n");
		await harness.engine.init("office");
		const office = await harness.engine.backup("office");
		harness.clock.advance(DAY_MS);
		const laptop = await harness.engine.backup("laptop");
		expect(laptop.snapshot?.id).not.toBe(office.snapshot?.id);
		const target = join(harness.dir, "out");
		expect((await harness.engine.restore("latest", { setName: "office", target })).snapshot.id).toBe(office.snapshot?.id);
		expect((await harness.engine.list("latest", { setName: "office" })).snapshot.id).toBe(office.snapshot?.id);
		const at = new Date(START.getTime() + 2 * DAY_MS);
		expect((await harness.engine.list("latest", { setName: "office", at })).snapshot.id).toBe(office.snapshot?.id);
		expect((await harness.engine.list("latest", { setName: "laptop", at })).snapshot.id).toBe(laptop.snapshot?.id);
	});
});

describe("transient faults", () => {
	async function threeSnapshots(budget: string) {
		harness = await createHarness({ start: START.toISOString(), env: { HOLDFAST_RETRY_BUDGET: budget } });
		await writeFile(join(harness.dir, "src/a.txt"), "a\n");
		await harness.engine.init();
		const ids: string[] = [];
		for (let i = 0; i < 3; i++) {
			await writeFile(join(harness.dir, "src/a.txt"), `version ${i}\n`);
			ids.push((await harness.engine.backup()).snapshot?.id as string);
			harness.clock.advance(DAY_MS);
		}
		// A machine that has to read everything from the store.
		await harness.reopen({ freshCatalog: true });
		return ids;
	}

	it("are ridden out: snapshots lists every snapshot after the store recovers", async () => {
		const ids = await threeSnapshots("30s");
		// The store answers again after a dozen failed reads.
		let failures = 12;
		const faults = injectResets([KEY_PREFIX.snapshots, KEY_PREFIX.index], () => failures-- > 0);
		const refs = await harness?.engine.snapshots();
		expect(refs?.map((r) => r.id)).toEqual(ids);
		expect(faults.injected()).toBe(12);
	});

	it("outlasting the budget fail the listing as unreachable, never a shorter list, never corrupt", async () => {
		await threeSnapshots("1s");
		const faults = injectResets([KEY_PREFIX.snapshots], () => true);
		const error = await harness?.engine.snapshots().catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
		expect((error as Error).message).toMatch(/^fs:.* is unreachable: get snapshots\/[0-9a-f]{64} kept failing for .*ECONNRESET/);
		expect(faults.injected()).toBeGreaterThan(1);
	});

	it("make check fail as unreachable rather than pass or call the data corrupt", async () => {
		await threeSnapshots("1s");
		injectResets([KEY_PREFIX.data], () => true);
		const error = await harness?.engine.check(undefined, { readDataPercent: 100 }).catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
	});

	it("on the key files do not pass for a wrong password", async () => {
		await threeSnapshots("1s");
		injectResets([KEY_PREFIX.keys], () => true);
		const error = await harness?.engine.open().catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
		expect((error as Error).message).toContain("is unreachable: get keys/");
	});

	it("on the config do not pass for a missing config", async () => {
		await threeSnapshots("1s");
		injectResets([KEY_PREFIX.config], () => true);
		const error = await harness?.engine.open().catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
	});

	it("a refused read is not called corrupt", async () => {
		const ids = await threeSnapshots("1s");
		const original = EmulatedLocks.prototype.get;
		vi.spyOn(EmulatedLocks.prototype, "get").mockImplementation(async function (this: EmulatedLocks, key, options) {
			if (key.startsWith(KEY_PREFIX.snapshots))
				throw Object.assign(new Error("Access Denied"), { $metadata: { httpStatusCode: 403 } });
			return original.call(this, key, options);
		});
		const open = await harness?.engine.open();
		const error = await open?.repository.loadSnapshotObject(`${KEY_PREFIX.snapshots}${ids[0]}`).catch((e: unknown) => e);
		expect(isHoldfastError(error, "DESTINATION"), String(error)).toBe(true);
		expect((error as Error).message).toContain("reading refused by fs:");
	});
});

describe("refused reads", () => {
	it("of the key files are not a wrong password", async () => {
		harness = await createHarness({ start: START.toISOString() });
		await harness.engine.init();
		await harness.reopen({ freshCatalog: true });
		const original = EmulatedLocks.prototype.get;
		vi.spyOn(EmulatedLocks.prototype, "get").mockImplementation(async function (this: EmulatedLocks, key, options) {
			if (key.startsWith(KEY_PREFIX.keys))
				throw Object.assign(new Error("Access Denied"), { $metadata: { httpStatusCode: 403 } });
			return original.call(this, key, options);
		});
		const error = await harness.engine.open().catch((e: unknown) => e);
		expect(isHoldfastError(error, "WRONG_PASSWORD"), String(error)).toBe(false);
		expect((error as Error).message).toMatch(/^no key file at fs:.* could be read \(keys\/[0-9a-f]{64}: reading refused by fs:/);
	});
});

describe("the CLI with the newest snapshot object damaged", () => {
	it("check --read-data, restore latest and groom exit 1 naming it; nothing is deleted", async () => {
		const dir = await tempDir("holdfast-unreadable-");
		await mkdir(join(dir, "data"));
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-groom"]
sets:
  docs:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 1, mode: compliance }
    groom: { match: retention, keepLast: 1, graceHours: 0 }
`,
		);
		const at = (days: number) => ["--now", new Date(START.getTime() + days * DAY_MS).toISOString()];
		expect(holdfast(dir, ["init", ...at(0)]).code).toBe(0);
		await writeFile(join(dir, "data/a.txt"), "first\n");
		const first = JSON.parse(holdfast(dir, ["backup", "--json", ...at(0)]).stdout).snapshot;
		await writeFile(join(dir, "data/a.txt"), "second\n");
		const second = JSON.parse(holdfast(dir, ["backup", "--json", ...at(2)]).stdout).snapshot;
		await damage(join(dir, "repo"), `snapshots/${second.id}`);
		// Another machine: no catalog holding a good copy.
		await rm(join(dir, ".holdfast"), { recursive: true, force: true });
		const before = await storedKeys(join(dir, "repo"));

		const check = holdfast(dir, ["check", "--read-data", ...at(3)]);
		expect(check.code).toBe(1);
		expect(check.stdout).toContain(`error: snapshots/${second.id}: no version of it verifies`);
		expect(check.stdout).toContain("check found problems");
		expect(check.stdout).not.toContain("no errors found");

		const restore = holdfast(dir, ["restore", "latest", "--target", "out", ...at(3)]);
		expect(restore.code).toBe(1);
		expect(restore.stderr).toContain(`holdfast: snapshots/${second.id} cannot be read`);
		expect(restore.stderr).toContain(`the newest readable one is ${first.id.slice(0, 12)}`);

		for (const args of [["groom", "--dry-run"], ["groom"]]) {
			const groom = holdfast(dir, [...args, ...at(40)]);
			expect(groom.code).toBe(1);
			expect(groom.stderr).toMatch(
				new RegExp(`^holdfast: docs: \\[groom\\] groom: nothing deleted: snapshots/${second.id} cannot be read`, "m"),
			);
		}
		expect(await storedKeys(join(dir, "repo"))).toEqual(before);
		await rm(dir, { recursive: true, force: true });
	});
});
