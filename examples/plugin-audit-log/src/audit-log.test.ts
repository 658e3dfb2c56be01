import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PluginDefinition } from "@holdfast/core";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../../tests/support/harness.js";
import auditLog from "./index.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

function withAuditLog(options: Record<string, unknown>) {
	return createHarness({
		plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", { use: "audit-log", options }],
		extraBuiltins: new Map([["audit-log", auditLog as unknown as PluginDefinition]]),
	});
}

async function auditLines(file: string): Promise<Record<string, unknown>[]> {
	return (await readFile(file, "utf8"))
		.trim()
		.split("\n")
		.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("the audit-log example plugin", () => {
	it("records every object written, warnings, changed files and the outcome, objects before their snapshot", async () => {
		const file = join(await mkdtemp(join(tmpdir(), "holdfast-audit-")), "audit.jsonl");
		harness = await withAuditLog({ file, changes: true });
		const src = join(harness.dir, "src");
		await mkdir(join(src, "docs"));
		await writeFile(join(src, "docs/a.txt"), "alpha");
		await writeFile(join(src, "locked.db"), "cannot be read");
		// The file saver meets an unreadable file, as it would one without read permission.
		harness.host.hooks.scan.tap("unreadable", (entries) =>
			(async function* () {
				for await (const entry of entries) {
					if (entry.relPath.toString() !== "locked.db") yield entry;
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
		await harness.engine.init();
		const result = await harness.engine.backup();
		await writeFile(join(src, "docs/b.txt"), "beta");
		await harness.engine.backup();
		await harness.host.dispose();

		const lines = await auditLines(file);
		const { destination } = await harness.engine.open();
		const stored: string[] = [];
		for await (const object of destination.list("")) stored.push(object.key);
		const objects = lines.filter((l) => l.event === "object");
		expect(objects.map((l) => l.key).sort()).toEqual(stored.sort());
		for (const object of objects) {
			expect(object).toMatchObject({ set: "main", lock: "compliance" });
			expect(Date.parse(object.until as string)).toBeGreaterThan(Date.parse("2030-04-01T00:00:00Z"));
		}
		expect(lines.filter((l) => l.event === "run").map((l) => [l.run, l.ok, l.snapshot !== undefined])).toEqual([
			["backup", true, true],
			["backup", true, true],
		]);
		// The verdict comes before the read: the unreadable file is new each time, then skipped.
		expect(lines.filter((l) => l.event === "change").map((l) => [l.path, l.change])).toEqual([
			[join(src, "docs/a.txt"), "new"],
			[join(src, "locked.db"), "new"],
			[join(src, "docs/b.txt"), "new"],
			[join(src, "locked.db"), "new"],
		]);
		expect(lines.filter((l) => l.event === "warning")).toEqual([
			expect.objectContaining({ run: "backup", path: join(src, "locked.db"), reason: "skipped: EACCES: permission denied" }),
			expect.objectContaining({ run: "backup", path: join(src, "locked.db") }),
		]);
		// Each backup's objects and its upload line come before its snapshot's object line.
		const firstSnapshot = lines.findIndex((l) => l.key === `snapshots/${result.snapshot?.id}`);
		const firstUpload = lines.findIndex((l) => l.event === "upload");
		expect(firstUpload).toBeGreaterThan(-1);
		expect(firstUpload).toBeLessThan(firstSnapshot);
		expect(lines.slice(0, firstUpload).some((l) => l.event === "object" && l.kind === "pack")).toBe(true);
	});

	it("refuses a run whose audit file cannot be written, before anything is written, and loses no line", async () => {
		const folder = join(await mkdtemp(join(tmpdir(), "holdfast-audit-")), "not-yet");
		const file = join(folder, "audit.jsonl");
		harness = await withAuditLog({ file });
		await writeFile(join(harness.dir, "src/a"), "a");
		await harness.engine.init();
		const refusal = `[audit-log] validate: cannot write the audit log ${file}: ENOENT`;
		await expect(harness.engine.backup()).rejects.toThrow(refusal);
		expect(await harness.engine.snapshots()).toEqual([]);
		// Once the folder exists, what could not be written yet reaches the file, in order.
		await mkdir(folder);
		await harness.host.dispose();
		const lines = await auditLines(file);
		expect(lines.map((l) => l.kind ?? l.event)).toEqual(["config", "key", "config", "key", "index", "run"]);
		expect(lines.at(-1)).toMatchObject({ run: "backup", ok: false });
		expect(lines.at(-1)?.error).toMatch(refusal);
	});
});
