import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { holdfastAsync as holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

/** Keys under `prefix` with a folder of versions on the local destination. */
async function keysUnder(repo: string, prefix: string): Promise<string[]> {
	const keys: string[] = [];
	const walk = async (dir: string, at: string) => {
		for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
			if (entry.name.endsWith(".versions")) keys.push(`${at}${entry.name.slice(0, -".versions".length)}`);
			else if (entry.isDirectory()) await walk(join(dir, entry.name), `${at}${entry.name}/`);
		}
	};
	await walk(join(repo, "objects", prefix), `${prefix}/`);
	return keys.sort();
}

describe("a write the local destination's crash cut short", () => {
	it("an index object whose lock record was never written is not trusted: the next backup stores what it listed again, locked", async () => {
		const dir = await tempDir("holdfast-torn-");
		const repo = join(dir, "repo");
		await mkdir(join(dir, "data"));
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-retention-planner"]
catalog: sqlite://./catalog.sqlite
sets:
  docs:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30, mode: compliance }
    packSizeMiB: 1
`,
		);
		const ok = async (args: string[]) => {
			const result = await holdfast(dir, args);
			expect(result.code, `${args.join(" ")}: ${result.stderr} ${result.stdout}`).toBe(0);
			return result;
		};
		await ok(["init"]);
		await writeFile(join(dir, "data/a.bin"), pseudoRandom(900_000, 1));
		await ok(["backup"]);
		const indexBefore = new Set(await keysUnder(repo, "index"));
		const snapshotsBefore = new Set(await keysUnder(repo, "snapshots"));

		// A run killed after an index object's bytes were stored but before their lock record, and
		// before its snapshot: what the local destination holds after such a crash, made by hand.
		await writeFile(join(dir, "data/b.bin"), pseudoRandom(2_500_000, 2));
		await ok(["backup"]);
		const torn = (await keysUnder(repo, "index")).filter((k) => !indexBefore.has(k));
		expect(torn.length).toBeGreaterThan(0);
		for (const key of torn) {
			const versions = join(repo, "objects", `${key}.versions`);
			for (const name of await readdir(versions)) if (name.endsWith(".json")) await rm(join(versions, name));
		}
		for (const key of await keysUnder(repo, "snapshots")) {
			if (!snapshotsBefore.has(key)) await rm(join(repo, "objects", `${key}.versions`), { recursive: true });
		}
		// A killed run flushes no file states: the next run starts from the store alone.
		for (const name of await readdir(dir)) if (name.startsWith("catalog.sqlite")) await rm(join(dir, name), { recursive: true });

		await ok(["backup"]);
		const check = JSON.parse((await ok(["check", "--read-data", "--json"])).stdout);
		expect(check.errors).toEqual([]);
		expect(check.immutability.gaps).toEqual([]);
		// The cut-off bytes are not the object, but they are still there for grooming to collect.
		expect(check.reclaimable.objects).toBeGreaterThanOrEqual(torn.length);
		await ok(["restore", "latest", "--target", "restored"]);
		expect(await describeTree(join(dir, "restored/data"))).toEqual(await describeTree(join(dir, "data")));
	});
});
