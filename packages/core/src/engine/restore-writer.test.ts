import { threadId } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { isRestoreTemp, tempPathFor } from "./restore-writer.js";

describe("tempPathFor", () => {
	it("gives names a later restore recognises and removes, each new, the thread's number in them", () => {
		const names = Array.from({ length: 3 }, () => tempPathFor(Buffer.from("/t"), Buffer.from("report.txt")));
		for (const path of names) {
			const name = path.subarray(3);
			expect(path.subarray(0, 3).toString()).toBe("/t/");
			expect(isRestoreTemp(name)).toBe(true);
			// The count's top hex digit is the thread's: worker threads writing one folder never meet.
			expect(Number.parseInt(name.toString().slice(-6, -5), 16)).toBe(threadId & 0xf);
		}
		expect(new Set(names.map(String)).size).toBe(3);
	});

	it("cuts a long name so the temporary name stays within 255 bytes", () => {
		const name = tempPathFor(Buffer.from("/t"), Buffer.alloc(255, "a")).subarray(3);
		expect(name.length).toBe(255);
		expect(isRestoreTemp(name)).toBe(true);
	});
});
