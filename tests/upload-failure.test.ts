import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MemoryStore } from "@holdfast/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { MEMORY_STORE_PLUGIN, memoryDestination, memoryStorePlugin } from "./support/memory-store-plugin.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** Makes `store` refuse pack uploads while `state.refusing` is set, with an error no retry repeats. */
function refusePacks(store: MemoryStore, state: { refusing: boolean; refused: number }): void {
	const put = store.put.bind(store);
	store.put = async (key, body, lock) => {
		if (state.refusing && key.startsWith("data/")) {
			state.refused++;
			throw new Error(`refused ${key}`);
		}
		return put(key, body, lock);
	};
}

describe("a pack upload that fails", () => {
	it("fails the backup with its error, saves no snapshot, and does not fail the next run", async () => {
		const state = { refusing: false, refused: 0 };
		harness = await createHarness({
			memoryStore: true,
			extraBuiltins: new Map([[MEMORY_STORE_PLUGIN, memoryStorePlugin({ onStore: (store) => refusePacks(store, state) })]]),
			sets: (dir) => ({ main: setConfig(dir, { destination: memoryDestination(dir) }) }),
		});
		// Several packs' worth, so uploads are in flight together when the first is refused.
		for (let i = 0; i < 6; i++) await writeFile(join(harness.dir, "src", `f${i}.bin`), randomBytes(3 * 1024 * 1024, i));
		await harness.engine.init();
		state.refusing = true;
		await expect(harness.engine.backup()).rejects.toThrow(/refused data\//);
		expect(state.refused).toBeGreaterThan(0);
		expect(await harness.engine.snapshots()).toEqual([]);

		state.refusing = false;
		harness.clock.advance(3_600_000);
		const next = await harness.engine.backup();
		expect(next.snapshot).toBeDefined();
		expect(next.summary.files.new).toBe(6);
	});
});

/** Incompressible bytes, different per seed. */
function randomBytes(size: number, seed: number): Buffer {
	const out = Buffer.alloc(size);
	let x = (seed + 1) * 2654435761;
	for (let i = 0; i < size; i += 4) {
		x ^= x << 13;
		x ^= x >>> 17;
		x ^= x << 5;
		out.writeUInt32LE(x >>> 0, i);
	}
	return out;
}
