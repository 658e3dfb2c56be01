import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** The file holding the one stored version of a key in the fs destination. */
async function versionFile(repo: string, key: string): Promise<string> {
	const dir = join(repo, "objects", `${key}.versions`);
	const data = (await readdir(dir)).find((f) => f.endsWith(".data")) as string;
	return join(dir, data);
}

describe("check", () => {
	it("passes on a healthy repository and audits every snapshot in its window as locked", async () => {
		harness = await createHarness({ inMemory: true });
		await writeFile(join(harness.dir, "src/a.bin"), pseudoRandom(100_000, 3));
		await harness.engine.init();
		await harness.engine.backup();
		harness.clock.advance(7 * 86_400_000);
		await harness.engine.backup();
		const report = await harness.engine.check(undefined, { readDataPercent: 100 });
		expect(report.errors).toEqual([]);
		expect(report.immutability.snapshots).toBe(2);
		expect(report.immutability.covered).toBe(2);
		expect(report.immutability.gaps).toEqual([]);
		expect(report.ok).toBe(true);
	});

	it("names the pack and the files a flipped bit damages; other files still restore", async () => {
		// Two files in different packs (1 MiB packs; each file is over a MiB of random data).
		harness = await createHarness({ inMemory: true, sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 1 }) }) });
		await writeFile(join(harness.dir, "src/victim.bin"), pseudoRandom(1_200_000, 4));
		await writeFile(join(harness.dir, "src/bystander.bin"), pseudoRandom(1_300_000, 5));
		await harness.engine.init();
		await harness.engine.backup();

		const open = await harness.engine.open();
		const victimNode = (
			await open.repository.loadTree(
				(
					await open.repository.loadTree((await open.repository.listSnapshots())[0]?.snapshot.tree as string)
				).nodes[0]?.subtree as string,
			)
		).nodes.find((n) => n.name === "victim.bin");
		// Flip one bit inside the victim's first blob: packs may hold other files' blobs too.
		const location = open.repository.index.blobs.get(victimNode?.content?.[0] as string);
		const packKey = location?.packKey as string;
		const file = await versionFile(join(harness.dir, "repo"), packKey);
		const bytes = await readFile(file);
		const at = (location?.offset ?? 0) + 40;
		bytes[at] = (bytes[at] as number) ^ 0x01;
		await writeFile(file, bytes);

		const report = await harness.engine.check(undefined, { readDataPercent: 100 });
		expect(report.ok).toBe(false);
		const line = report.errors.find((e) => e.startsWith(packKey));
		expect(line).toMatch(/damaged blob/);
		expect(line).toContain("/src/victim.bin");
		expect(line).not.toContain("bystander");

		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target, include: (p) => p === "src/bystander.bin" });
		expect((await readFile(join(target, "src/bystander.bin"))).equals(pseudoRandom(1_300_000, 5))).toBe(true);
		// The victim is named as lost, not written: its restore is no success.
		const victim = await harness.engine.restore("latest", {
			target: join(harness.dir, "out2"),
			include: (p) => p === "src/victim.bin",
		});
		expect(victim.summary.lost).toEqual([join(harness.dir, "out2/src/victim.bin")]);
		expect(victim.summary.files).toBe(0);
		expect(harness.logger.lines.map((l) => l.line)).toContainEqual(
			expect.stringMatching(/src\/victim\.bin: not restored: .*(no version of it verifies|authentication failed)/),
		);
	});
});
