import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
	ContainerModule,
	type DestinationType,
	definePlugin,
	type PluginDefinition,
	type SetConfig,
	TOKENS,
} from "@holdfast/core";
import { MemoryStore } from "@holdfast/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** A store that refuses pack uploads while `refusing` is set, with an error no retry repeats. */
function refusingStorePlugin(state: { refusing: boolean; refused: number }): PluginDefinition {
	let store: MemoryStore | undefined;
	const type: DestinationType<{ name: string }> = {
		type: "refusing",
		optionsSchema: { type: "object", additionalProperties: false, required: ["name"], properties: { name: { type: "string" } } },
		create: (options, environment) => {
			if (!store) {
				store = new MemoryStore(environment.clock, {}, `refusing:${options.name}`);
				const put = store.put.bind(store);
				store.put = async (key, body, lock) => {
					if (state.refusing && key.startsWith("data/")) {
						state.refused++;
						throw new Error(`refused ${key}`);
					}
					return put(key, body, lock);
				};
			}
			return store;
		},
	};
	return definePlugin({
		name: "refusing-store",
		version: "0.1.0",
		engine: "^0.1.0",
		containerModule: new ContainerModule((options) => {
			options.bind(TOKENS.DestinationType).toConstantValue(type);
		}),
	}) as PluginDefinition;
}

describe("a pack upload that fails", () => {
	it("fails the backup with its error, saves no snapshot, and does not fail the next run", async () => {
		const state = { refusing: false, refused: 0 };
		const plugin = refusingStorePlugin(state);
		harness = await createHarness({
			plugins: ["@holdfast/plugin-fs-source", "refusing-store"],
			extraBuiltins: new Map([["refusing-store", plugin]]),
			sets: (dir): Record<string, SetConfig> => ({
				main: { ...setConfig(dir), destination: { type: "refusing", name: dir } as SetConfig["destination"] },
			}),
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
