import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isHoldfastError, KEY_PREFIX } from "@holdfast/core";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./support/harness.js";
import { describeTree } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** Flips one byte in every stored version of `key` (a bit rot, or a careless hand). */
async function flipOneByte(h: Harness, key: string): Promise<void> {
	const dir = join(h.dir, "repo", "objects", `${key}.versions`);
	for (const name of (await readdir(dir)).filter((f) => f.endsWith(".data"))) {
		const bytes = await readFile(join(dir, name));
		bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] as number) ^ 0x01;
		await writeFile(join(dir, name), bytes);
	}
}

async function keysUnder(h: Harness, prefix: string): Promise<string[]> {
	const keys = new Set<string>();
	for await (const version of (await h.engine.open()).destination.listVersions(prefix)) keys.add(version.key);
	return [...keys].sort();
}

describe("config and key files are kept twice", () => {
	it("one damaged copy of each is called damaged, and the other copy opens the repository", async () => {
		harness = await createHarness({ inMemory: true });
		await harness.engine.init();
		await writeFile(join(harness.dir, "src/a.txt"), "still here");
		await harness.engine.backup();
		const keyFiles = await keysUnder(harness, KEY_PREFIX.keys);
		const configs = await keysUnder(harness, KEY_PREFIX.config);
		expect(keyFiles).toHaveLength(2);
		expect(configs).toHaveLength(2);

		await flipOneByte(harness, keyFiles[0] as string);
		await flipOneByte(harness, configs[0] as string);
		await harness.reopen({ freshCatalog: true });
		const before = harness.logger.lines.length;
		const [snapshot] = await harness.engine.snapshots();
		const target = join(harness.dir, "restored");
		await harness.engine.restore(snapshot?.id as string, { target });
		expect(await describeTree(join(target, "src"))).toEqual(await describeTree(join(harness.dir, "src")));
		const warned = harness.logger.lines.slice(before).map((l) => l.line);
		expect(warned.some((l) => l.includes(`${keyFiles[0]}: unreadable key file; another copy opened the repository`))).toBe(true);
		expect(warned.some((l) => l.includes(`${configs[0]}: unreadable config copy; another copy was read`))).toBe(true);
	});

	it("with every key file damaged, the repository is said to be unreadable, not the password wrong", async () => {
		harness = await createHarness({ inMemory: true });
		await harness.engine.init();
		for (const key of await keysUnder(harness, KEY_PREFIX.keys)) await flipOneByte(harness, key);
		await harness.reopen({ freshCatalog: true });
		const error = await harness.engine.open().catch((e: unknown) => e);
		expect(isHoldfastError(error, "WRONG_PASSWORD"), String(error)).toBe(false);
		expect((error as Error).message).toMatch(
			/^no key file at fs:.* could be read \(keys\/[0-9a-f]{64}: .*does not match its name/,
		);
	});

	it("a wrong password is still a wrong password", async () => {
		harness = await createHarness({ inMemory: true });
		await harness.engine.init();
		await harness.reopen({ freshCatalog: true, password: "not the one" });
		const error = await harness.engine.open().catch((e: unknown) => e);
		expect(isHoldfastError(error, "WRONG_PASSWORD"), String(error)).toBe(true);
	});
});
