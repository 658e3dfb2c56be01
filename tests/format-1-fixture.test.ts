import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { describeTree } from "./support/trees.js";

/**
 * A repository written by holdfast before small data became DEFLATE and trees Brotli at quality 2
 * (Brotli at quality 1 throughout, stored blobs, a chunk of a large file, a symlink, an empty
 * file), with the description of the folder it backed up: every later reader must restore it.
 */
const FIXTURE = join(import.meta.dirname, "fixtures/format-1");
const PASSWORD = "format fixture";
/** Its one snapshot, by ID: `latest` picks among this machine's snapshots, and the fixture's host is another. */
const SNAPSHOT = "670c21493075";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

async function openFixture(): Promise<Harness> {
	const opened = await createHarness({
		password: PASSWORD,
		sets: (dir) => ({ fixture: setConfig(dir, { retention: { days: 1, mode: "compliance" } }) }),
	});
	// A copy: the fixture stays as committed, whatever the test writes.
	await cp(join(FIXTURE, "repository"), join(opened.dir, "repo"), { recursive: true });
	return opened;
}

describe("a repository of format 1 written by an earlier holdfast", () => {
	it("restores exactly: contents, modes, times and links", async () => {
		harness = await openFixture();
		const expected = JSON.parse(await readFile(join(FIXTURE, "source.json"), "utf8"));
		const target = join(harness.dir, "restored");
		await harness.engine.restore(SNAPSHOT, { target });
		expect(await describeTree(join(target, "source"))).toEqual(expected);
	});

	it("takes a backup by today's writer beside it, and both snapshots restore", async () => {
		harness = await openFixture();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "small.txt"), "a small note, written after the upgrade\n".repeat(10));
		await writeFile(join(src, "medium.txt"), "every quarter the ledger grows by another few lines\n".repeat(400));
		const { snapshot } = await harness.engine.backup();
		const written = await describeTree(src);

		const newTarget = join(harness.dir, "restored-new");
		await harness.engine.restore(snapshot?.id as string, { target: newTarget });
		expect(await describeTree(join(newTarget, "src"))).toEqual(written);
		const oldTarget = join(harness.dir, "restored-old");
		await harness.engine.restore(SNAPSHOT, { target: oldTarget });
		expect(await describeTree(join(oldTarget, "source"))).toEqual(
			JSON.parse(await readFile(join(FIXTURE, "source.json"), "utf8")),
		);
	});
});
