import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLifecycleHooks, type HookName, type RunPlan, STAGE, type UploadedObject } from "@holdfast/core";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** Every version of every key in the set's repository, delete markers aside. */
async function storedObjects(h: Harness): Promise<Map<string, number>> {
	const { destination } = await h.engine.open();
	const stored = new Map<string, number>();
	for await (const version of destination.listVersions("")) {
		if (!version.isDeleteMarker) stored.set(version.key, version.size);
	}
	return stored;
}

const KIND_OF_PREFIX: Record<string, UploadedObject["kind"]> = {
	data: "pack",
	index: "index",
	snapshots: "snapshot",
	config: "config",
	keys: "key",
};

describe("lifecycle hooks", () => {
	it("didUploadObject reports every object init, backups and grooming write, and nothing for a plan", async () => {
		harness = await createHarness({
			inMemory: true,
			sets: (dir) => ({
				// A store that cannot extend locks: the second backup writes fresh config and key copies too.
				main: setConfig(dir, {
					destination: { type: "fs", path: join(dir, "repo"), lockExtension: false },
					schedule: { every: "7d" },
					planner: { strategy: "auto", missedRuns: 0, slackDays: 14 },
					groom: { match: "retention", graceHours: 6 },
				}),
			}),
		});
		const src = join(harness.dir, "src");
		await mkdir(join(src, "docs"));
		await writeFile(join(src, "docs/a.txt"), "alpha\n");
		await writeFile(join(src, "big.bin"), pseudoRandom(3_000_000, 7));
		const reported: { object: UploadedObject; setName: string }[] = [];
		const watch = (h: Harness) =>
			h.host.hooks.didUploadObject.tap("watch", (object, setName) => reported.push({ object, setName }));
		watch(harness);
		await harness.engine.init();
		await harness.engine.backup();
		await harness.engine.backup(undefined, { dryRun: true });
		const afterPlan = reported.length;
		for (let week = 1; week <= 20; week++) {
			harness.clock.advance(7 * 86_400_000);
			await writeFile(join(src, "docs/a.txt"), `alpha, week ${week}\n`);
			await harness.engine.backup();
		}
		const groomed = await harness.engine.groom();

		// What is stored was reported; what was reported is stored, unless grooming deleted it since.
		const stored = await storedObjects(harness);
		expect(new Set(reported.map((r) => r.object.key))).toEqual(new Set([...stored.keys(), ...groomed.deleted.keys]));
		for (const { object, setName } of reported) {
			expect(setName).toBe("main");
			expect(object.kind).toBe(KIND_OF_PREFIX[object.key.split("/")[0] as string]);
			if (stored.has(object.key)) expect(object.size).toBe(stored.get(object.key));
			expect(object.lock.until.getTime()).toBeGreaterThan(0);
		}
		const kinds = new Set(reported.map((r) => r.object.kind));
		expect(kinds).toEqual(new Set(["pack", "index", "snapshot", "config", "key"]));
		// The plan run between the first two backups wrote nothing and reported nothing.
		const firstBackupObjects = reported.findIndex((r) => r.object.kind === "snapshot") + 1;
		expect(afterPlan).toBe(firstBackupObjects);
	});

	it("a backup meets the hooks in the order they are declared", async () => {
		harness = await createHarness({ inMemory: true });
		const src = join(harness.dir, "src");
		await writeFile(join(src, "a"), "stays");
		await writeFile(join(src, "b"), "cannot be read");
		await harness.engine.init();
		const firstCall: HookName[] = [];
		const hooks = harness.host.hooks;
		const record = (name: HookName) => {
			if (!firstCall.includes(name)) firstCall.push(name);
		};
		for (const name of Object.keys(hooks) as HookName[]) {
			const hook = hooks[name] as unknown as { tap(name: string, fn: (...args: unknown[]) => unknown): void };
			hook.tap("order", (...args: unknown[]) => {
				record(name);
				return ["plan", "scan", "diff", "lock", "groom"].includes(name) ? args[0] : undefined;
			});
		}
		// The file saver meets an unreadable file: a warning, as a vanished file would give.
		hooks.scan.tap("unreadable", (entries) =>
			(async function* () {
				for await (const entry of entries) {
					if (entry.relPath.toString() !== "b") yield entry;
					else
						yield {
							...entry,
							read: () => {
								throw Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
							},
						};
				}
			})(),
		);
		const result = await harness.engine.backup();
		expect(result.warnings.map((w) => w.reason)).toEqual(["skipped: EACCES: permission denied"]);
		const declared = Object.keys(createLifecycleHooks()) as HookName[];
		const notInBackup = new Set<HookName>(["groom", "keep", "failed"]);
		expect(firstCall).toEqual(declared.filter((name) => !notInBackup.has(name)));
	});

	it("the run carries the plan the plan taps made to the lock and afterRun taps, one plan per run", async () => {
		harness = await createHarness({ inMemory: true });
		await writeFile(join(harness.dir, "src", "a"), "data");
		await harness.engine.init();
		const hooks = harness.host.hooks;
		const made: RunPlan[] = [];
		const seen: { hook: string; plan: RunPlan | undefined }[] = [];
		hooks.validate.tap("watch", (run) => {
			seen.push({ hook: "validate", plan: run.plan });
		});
		hooks.plan.tap({ name: "watch", stage: STAGE.REPORT }, (plan) => {
			const mine = { ...plan, notes: [...plan.notes, `run ${made.length + 1}`] };
			made.push(mine);
			return mine;
		});
		hooks.lock.tap("watch", (lockPlan, run) => {
			seen.push({ hook: "lock", plan: run.plan });
			return lockPlan;
		});
		hooks.afterRun.tap("watch", (run) => {
			seen.push({ hook: "afterRun", plan: run.plan });
		});
		await harness.engine.backup();
		harness.clock.advance(86_400_000);
		await harness.engine.backup();
		expect(seen.map((s) => s.hook)).toEqual(["validate", "lock", "afterRun", "validate", "lock", "afterRun"]);
		expect(seen.map((s) => s.plan)).toEqual([undefined, made[0], made[0], undefined, made[1], made[1]]);
		expect(seen[4]?.plan).toBe(made[1]);
		expect(made[0]).not.toBe(made[1]);
	});

	it("taps read the repository through a frozen view that can write nothing", async () => {
		harness = await createHarness({ inMemory: true });
		await writeFile(join(harness.dir, "src", "a"), pseudoRandom(200_000, 3));
		await harness.engine.init();
		await harness.engine.backup();
		const { repository } = await harness.engine.open();
		let checked = false;
		harness.host.hooks.groom.tapPromise("look", async (plan, run) => {
			const view = run.repository;
			expect(view).not.toBe(repository);
			expect(Object.isFrozen(view)).toBe(true);
			for (const write of ["writeIndex", "saveSnapshot", "saveBlob", "deleteObject", "loadIndex"])
				expect(write in view).toBe(false);
			expect(Object.keys(view.destination).sort()).toEqual(["capabilities", "description"]);
			// Frozen through: a tap cannot turn the store's emulated locks into "enforced by the provider".
			expect(Object.isFrozen(view.destination.capabilities)).toBe(true);
			expect(view.destination.capabilities).not.toBe(repository.destination.capabilities);
			expect(() => {
				(view.destination.capabilities as { enforcedByProvider: boolean }).enforcedByProvider = true;
			}).toThrow(TypeError);
			expect(repository.destination.capabilities.enforcedByProvider).toBe(false);
			const stored = await view.storedObjects();
			expect([...view.index.packs.keys()].every((key) => stored.has(key))).toBe(true);
			const ref = (await view.readSnapshots()).refs[0];
			if (!ref) throw new Error("no snapshot");
			const needs = await view.snapshotObjects(ref);
			// Every blob the one snapshot uses is live; nothing of its packs is dead.
			expect(view.index.deadBytes(needs.blobs, new Set())).toBe(0);
			expect(view.index.deadBytes(new Set(), new Set())).toBeGreaterThan(200_000);
			checked = true;
			return plan;
		});
		await harness.engine.groom(undefined, { dryRun: true });
		expect(checked).toBe(true);
	});

	it("a validate tap that throws stops the run before anything is written, naming the plugin", async () => {
		harness = await createHarness({
			inMemory: true,
			plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "gatekeeper"],
			extraBuiltins: new Map([
				[
					"gatekeeper",
					{
						name: "gatekeeper",
						version: "1.0.0",
						engine: "^0.1.0",
						activate(context) {
							context.hooks.validate.tap("gatekeeper", (run) => {
								if (run.kind === "backup") throw new Error("not during office hours");
							});
						},
					},
				],
			]),
		});
		await writeFile(join(harness.dir, "src/a"), "a");
		await harness.engine.init();
		const written: string[] = [];
		const failed: string[] = [];
		harness.host.hooks.didUploadObject.tap("watch", (object) => written.push(object.key));
		harness.host.hooks.beforeRun.tap("watch", () => {
			throw new Error("beforeRun must not run after a veto");
		});
		harness.host.hooks.failed.tap("watch", (_run, error) => {
			failed.push(error.message);
		});
		await expect(harness.engine.backup()).rejects.toThrow("[gatekeeper] validate: not during office hours");
		expect(written).toEqual([]);
		expect(failed).toEqual(["[gatekeeper] validate: not during office hours"]);
		expect(await harness.engine.snapshots()).toEqual([]);
	});

	it("a diff tap may have a file read again, but may not call a changed file unchanged", async () => {
		harness = await createHarness({ inMemory: true });
		const file = join(harness.dir, "src/a.txt");
		await writeFile(file, "alpha\n");
		await harness.engine.init();
		await harness.engine.backup();
		let mode: "reread" | "hide" = "hide";
		const seen: string[] = [];
		harness.host.hooks.diff.tap("rewrite", (change) => {
			seen.push(change.kind);
			if (mode === "hide" && change.kind === "changed") return { kind: "unchanged", knownBlobs: [] };
			if (mode === "reread" && change.kind === "unchanged") return { kind: "changed" };
			return change;
		});
		await writeFile(file, "beta, longer\n");
		await expect(harness.engine.backup()).rejects.toThrow(
			`diff: a tap called ${file} unchanged where the core found it changed; a tap may only have a file read again`,
		);
		expect(seen).toEqual(["changed"]);
		expect(await harness.engine.snapshots()).toHaveLength(1);

		// The same file, now stored; then unchanged on disk but read again at the tap's word.
		mode = "reread";
		seen.length = 0;
		const second = await harness.engine.backup();
		const third = await harness.engine.backup();
		expect(seen).toEqual(["changed", "unchanged"]);
		expect(second.summary.files.changed).toBe(1);
		expect(third.summary.files.changed).toBe(1);
		const target = join(harness.dir, "restored");
		await harness.engine.restore(third.snapshot?.id as string, { target });
		expect(await readFile(join(target, "src/a.txt"), "utf8")).toBe("beta, longer\n");
	});

	it("a plan tap may not lock a compliance set's new objects in governance mode", async () => {
		harness = await createHarness({
			inMemory: true,
			sets: (dir) => ({ main: setConfig(dir, { retention: { days: 30, mode: "compliance" } }) }),
		});
		await writeFile(join(harness.dir, "src/a"), "data");
		await harness.engine.init();
		const written: string[] = [];
		harness.host.hooks.didUploadObject.tap("watch", (object) => written.push(object.key));
		harness.host.hooks.plan.tap("weaken", (plan) => ({ ...plan, lock: { ...plan.lock, mode: "governance" } }));
		await expect(harness.engine.backup()).rejects.toThrow(
			"plan: new objects would be locked in governance mode where the config asks for compliance",
		);
		expect(written).toEqual([]);
		expect(await harness.engine.snapshots()).toEqual([]);
	});

	it("a groom tap may not forget a snapshot inside its retention window", async () => {
		harness = await createHarness({ inMemory: true });
		await writeFile(join(harness.dir, "src/a"), "data");
		await harness.engine.init();
		const { snapshot } = await harness.engine.backup();
		if (!snapshot) throw new Error("no snapshot");
		harness.clock.advance(86_400_000);
		harness.host.hooks.groom.tap("forget-all", (plan, run) => ({
			...plan,
			forget: [{ id: snapshot.id, key: `snapshots/${snapshot.id}`, time: run.startedAt.toISOString(), reason: "all of them" }],
		}));
		await expect(harness.engine.groom()).rejects.toThrow(
			`groom: the plan forgets snapshot ${snapshot.id.slice(0, 12)}, protected until`,
		);
		expect((await harness.engine.snapshots()).map((s) => s.id)).toEqual([snapshot.id]);
	});
});
