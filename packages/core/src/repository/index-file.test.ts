import { describe, expect, it } from "vitest";
import { type IndexFile, MasterIndex } from "./index-file.js";

function indexFile(created: string, locks: IndexFile["locks"]): IndexFile {
	return { v: 1, created, packs: [], locks, self: { mode: "compliance", until: "2030-02-01T00:00:00.000Z" } };
}

describe("merging lock records", () => {
	it("keeps the longest lock of each object and the version recorded last, however often an object is merged", () => {
		const older = Object.freeze(
			indexFile("2030-01-01T00:00:00.000Z", [
				{ key: "snapshots/a", mode: "compliance", until: "2030-03-01T00:00:00.000Z", version: "v1" },
				{ key: "config", mode: "governance", until: "2030-06-01T00:00:00.000Z" },
			]),
		);
		const newer = indexFile("2030-01-02T00:00:00.000Z", [
			{ key: "snapshots/a", mode: "compliance", until: "2030-02-01T00:00:00.000Z", version: "v2" },
			{ key: "config", mode: "compliance", until: "2030-07-01T00:00:00.000Z" },
		]);
		for (let load = 0; load < 2; load++) {
			const index = new MasterIndex();
			index.add("index/1", older);
			index.add("index/2", newer);
			expect(index.lockUntil("snapshots/a")?.toISOString()).toBe("2030-03-01T00:00:00.000Z");
			expect(index.locks.get("config")).toEqual({ mode: "compliance", until: new Date("2030-07-01T00:00:00.000Z") });
			expect(index.versions.get("snapshots/a")).toBe("v2");
			expect(index.lockUntil("index/2")?.toISOString()).toBe("2030-02-01T00:00:00.000Z");
		}
		// Another object with the same keys has its own times: nothing parsed for one stands for another.
		const index = new MasterIndex();
		index.add(
			"index/3",
			indexFile("2030-01-03T00:00:00.000Z", [{ key: "config", mode: "compliance", until: "2031-01-01T00:00:00.000Z" }]),
		);
		expect(index.lockUntil("config")?.toISOString()).toBe("2031-01-01T00:00:00.000Z");
	});
});
