import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MemoryLogger, Repository } from "@holdfast/core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { protectionNeeds } from "../packages/core/src/engine/protection-needs.js";
import { createHarness, type Harness } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

/** The needs as plain values, for comparing two counts. */
function plain(needs: Awaited<ReturnType<typeof protectionNeeds>>) {
	const packs = [...needs.packs.values()].map((p) => ({ ...p, live: [...p.live].sort((a, b) => a.id.localeCompare(b.id)) }));
	return { objects: [...needs.objects.values()], packs, snapshots: needs.snapshots };
}

/** Three folders of one file each in the harness's source, and its repository made; the source folder. */
async function initWithFolders(opened: Harness): Promise<string> {
	const src = join(opened.dir, "src");
	for (const dir of ["a/b", "a/c", "d"]) {
		await mkdir(join(src, dir), { recursive: true });
		await writeFile(join(src, dir, "file.txt"), `in ${dir}\n`);
	}
	await opened.engine.init();
	return src;
}

describe("the count of what open windows need", () => {
	it("walks only trees it has not seen while the repository stays open, and counts as a fresh walk does", async () => {
		harness = await createHarness({ memoryStore: true });
		const src = await initWithFolders(harness);
		for (let run = 0; run < 3; run++) {
			await writeFile(join(src, "a/b", `new-${run}.txt`), `run ${run}\n`);
			await harness.engine.backup();
			harness.clock.advance(86_400_000);
		}
		const { repository, destination } = await harness.engine.open();
		const snapshots = await repository.listSnapshots();
		expect(snapshots).toHaveLength(3);
		const now = harness.clock.now();

		// The last backup counted every snapshot but its own: only the newest one's changed trees are new.
		const loadTree = vi.spyOn(Repository.prototype, "loadTree");
		const first = await protectionNeeds(repository, snapshots, now);
		const walked = loadTree.mock.calls.map(([id]) => id);
		// Its top tree, src and a, a/b: the trees its new file changed; a/c and d were seen.
		expect(walked).toHaveLength(4);
		expect(new Set(walked).size).toBe(4);
		loadTree.mockClear();
		const again = await protectionNeeds(repository, snapshots, now);
		expect(loadTree).not.toHaveBeenCalled();

		// A repository opened afresh knows nothing yet: it walks every tree, and needs the same.
		const fresh = await Repository.open("correct horse", {
			destination,
			clock: harness.clock,
			logger: new MemoryLogger("error"),
		});
		try {
			await fresh.loadIndex();
			loadTree.mockClear();
			const counted = await protectionNeeds(fresh, await fresh.listSnapshots(), now);
			// Three snapshots of five folders each, and the top trees: shared ones walked once.
			expect(loadTree.mock.calls.length).toBeGreaterThan(walked.length);
			expect(plain(counted)).toEqual(plain(first));
			expect(plain(again)).toEqual(plain(first));
			expect(counted.packs.size).toBeGreaterThan(0);
		} finally {
			await fresh.close();
		}
	});

	it("a backup counts the trees its snapshot shares with earlier ones from its own walk, and needs what a fresh count finds", async () => {
		harness = await createHarness({ memoryStore: true });
		const src = await initWithFolders(harness);
		await harness.engine.backup();
		harness.clock.advance(86_400_000);
		await writeFile(join(src, "a/b", "new.txt"), "changed\n");
		await harness.engine.backup();
		harness.clock.advance(86_400_000);
		// A new process: nothing counted yet, every earlier tree would be loaded.
		await harness.reopen();
		let counted: Awaited<ReturnType<typeof protectionNeeds>> | undefined;
		harness.host.hooks.lock.tap("watch", (lockPlan) => {
			counted = lockPlan.needs;
			return lockPlan;
		});
		const loadTree = vi.spyOn(Repository.prototype, "loadTree");
		await harness.engine.backup();
		// The first snapshot's top, src, a and a/b: its a/c and d, and the second's a, a/b, a/c and d, are
		// this walk's own trees. The second's top and src are too, but the count starts once the walk
		// has listed everything, and this run may save those two only after it: loaded or not.
		// Counted afresh, the two snapshots have 10 trees to load.
		expect(loadTree.mock.calls.length).toBeGreaterThanOrEqual(4);
		expect(loadTree.mock.calls.length).toBeLessThanOrEqual(6);
		loadTree.mockRestore();

		const { destination } = await harness.engine.open();
		const fresh = await Repository.open("correct horse", {
			destination,
			clock: harness.clock,
			logger: new MemoryLogger("error"),
		});
		try {
			await fresh.loadIndex();
			const snapshots = await fresh.listSnapshots();
			expect(snapshots).toHaveLength(3);
			const walked = await protectionNeeds(fresh, snapshots, harness.clock.now());
			expect(counted?.snapshots).toBe(3);
			expect(plain(counted as NonNullable<typeof counted>).packs).toEqual(plain(walked).packs);
			expect(walked.packs.size).toBeGreaterThan(0);
		} finally {
			await fresh.close();
		}
	});
});
