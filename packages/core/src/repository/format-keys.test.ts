import { describe, expect, it } from "vitest";
import { isRepositoryObjectKey, packKey } from "./format.js";

const hash = "ab".padEnd(64, "3");

describe("isRepositoryObjectKey", () => {
	it("knows the keys this format writes, and nothing else under its prefixes", () => {
		expect(isRepositoryObjectKey(packKey(hash))).toBe(true);
		expect(isRepositoryObjectKey(`index/${hash}`)).toBe(true);
		expect(isRepositoryObjectKey(`snapshots/${hash}`)).toBe(true);
		expect(isRepositoryObjectKey(`keys/${hash}`)).toBe(true);
		expect(isRepositoryObjectKey(`config/${hash}`)).toBe(true);
		// Another repository nested under the prefix "data/" of the same bucket.
		for (const foreign of [
			`data/config/${hash}`,
			`data/data/ab/${hash}`,
			`data/snapshots/${hash}`,
			`data/cd/${hash}`,
			`index/${hash}.tmp`,
			"snapshots/notes.txt",
			`keys/${hash}x`,
		]) {
			expect(isRepositoryObjectKey(foreign), foreign).toBe(false);
		}
	});
});
