import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LockRefusedError, type ObjectVersion } from "@holdfast/core";
import { afterAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { memoryDestination } from "./support/memory-store-plugin.js";

const harnesses: Harness[] = [];
afterAll(async () => {
	for (const h of harnesses) await h.close();
});

describe("the simulations' memory store", () => {
	it("keeps its versions across a reopened engine, and its locks refuse what Object Lock refuses", async () => {
		const h = await createHarness({
			memoryStore: true,
			sets: (dir) => ({ main: setConfig(dir, { destination: memoryDestination(dir) }) }),
		});
		harnesses.push(h);
		await writeFile(join(h.dir, "src/a.txt"), "a\n");
		await h.engine.init();
		const taken = (await h.engine.backup()).snapshot;
		await h.reopen({ freshCatalog: true });
		expect((await h.engine.snapshots()).map((r) => r.id)).toEqual([taken?.id]);
		const destination = h.engine.destinationFor("main", h.engine.resolveSet("main").set);
		expect(destination.description).toBe(`memory:${h.dir}/repo`);
		let locked: ObjectVersion | undefined;
		for await (const version of destination.listVersions("snapshots/")) locked ??= version;
		await expect(destination.deleteVersion(locked?.key as string, locked?.versionId as string)).rejects.toBeInstanceOf(
			LockRefusedError,
		);
	});
});
