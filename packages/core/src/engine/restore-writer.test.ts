import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { createMode, isRestoreTemp, needsChmod, TempFile, tempPathFor } from "./restore-writer.js";

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

describe("the mode of a restored file", () => {
	const dir = mkdtempSync(join(tmpdir(), "holdfast-mode-"));
	afterAll(() => rmSync(dir, { recursive: true, force: true }));

	it("skips fchmod only when creation under the umask already gives the whole mode", () => {
		expect(needsChmod(0o644, 0o022)).toBe(false);
		expect(needsChmod(0o755, 0o022)).toBe(false);
		expect(needsChmod(0o400, 0o022)).toBe(false);
		// Bits the umask takes away, write for others and special bits are set afterwards.
		expect(needsChmod(0o664, 0o022)).toBe(true);
		expect(needsChmod(0o644, 0o077)).toBe(true);
		expect(needsChmod(0o666, 0o000)).toBe(true);
		expect(needsChmod(0o4755, 0o022)).toBe(true);
		expect(createMode(0o4777)).toBe(0o755);
	});

	it.each([0o644, 0o600, 0o664, 0o666, 0o444, 0o2750, 0o000])(
		"ends as %o whether or not it was changed after creation",
		(mode) => {
			const name = `f${mode.toString(8)}`;
			const out = new TempFile(
				{ dir: Buffer.from(dir), name: Buffer.from(name), path: Buffer.from(join(dir, name)) },
				{ uid: 0, gid: 0, mode, mtime: "1000000000000000000" },
				3,
			);
			out.write(Buffer.from("abc"), 0);
			out.finish(false);
			const st = statSync(join(dir, name));
			expect(st.mode & 0o7777).toBe(mode);
			expect(st.size).toBe(3);
		},
	);
});
