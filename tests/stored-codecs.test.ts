import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { open as openSealed } from "../packages/core/src/repository/blob-codec.js";
import { CODEC } from "../packages/core/src/repository/compression.js";
import { createHarness, type Harness } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

describe("the codecs a backup stores", () => {
	it("keeps every tree, small or past 64 KiB (sealed on a worker), in Brotli, and file content in zstd", async () => {
		harness = await createHarness({ inMemory: true });
		const src = join(harness.dir, "src");
		// One folder whose tree is far past 64 KiB, one with a small tree.
		await mkdir(join(src, "many"), { recursive: true });
		for (let i = 0; i < 1500; i++) {
			await writeFile(join(src, "many", `a-fairly-long-file-name-number-${String(i).padStart(5, "0")}.txt`), `line ${i}\n`);
		}
		await mkdir(join(src, "few"));
		await writeFile(join(src, "few", "ledger.txt"), "the ledger of the quarter, line by line\n".repeat(2000));
		await harness.engine.init();
		await harness.engine.backup();
		const { repository } = await harness.engine.open();
		const codecOf = async (id: string): Promise<{ codec: number; rawLength: number }> => {
			const location = repository.index.blobs.get(id);
			if (!location) throw new Error(`blob ${id} is not indexed`);
			const sealed = await repository.readSealedBlob(id, location);
			return { codec: openSealed(repository.keys.raw.encryption, sealed, id)[0] as number, rawLength: location.rawLength };
		};
		const [snapshot] = await repository.listSnapshots();
		const top = await repository.loadTree(snapshot?.snapshot.tree as string);
		const srcTree = await repository.loadTree(top.nodes[0]?.subtree as string);
		const byName = new Map(srcTree.nodes.map((node) => [node.name, node]));
		const many = await codecOf(byName.get("many")?.subtree as string);
		expect(many.rawLength).toBeGreaterThan(64 * 1024);
		expect(many.codec).toBe(CODEC.brotli);
		expect((await codecOf(byName.get("few")?.subtree as string)).codec).toBe(CODEC.brotli);
		const ledger = (await repository.loadTree(byName.get("few")?.subtree as string)).nodes[0]?.content?.[0] as string;
		expect((await codecOf(ledger)).codec).toBe(CODEC.zstd);
	});
});
