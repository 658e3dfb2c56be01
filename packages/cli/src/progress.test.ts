import { describe, expect, it } from "vitest";
import { render, startProgress } from "./progress.js";

const none = { files: 0, bytes: 0, items: 0 };

describe("progress line", () => {
	it("without a total: counts and rates, no percentage, no ETA", () => {
		const line = render("backup", { ...none, files: 120, bytes: 10 * 1024 * 1024 }, undefined, 4000);
		expect(line).toBe("backup  120 files  10.0 MiB  2.5 MiB/s  30 files/s  0:04");
	});

	it("with a total: a bar and a percentage, and an ETA only after a few seconds", () => {
		const total = { files: 400, bytes: 40 * 1024 * 1024 };
		const early = render("restore", { ...none, files: 100, bytes: 10 * 1024 * 1024 }, total, 1000);
		expect(early).toBe(
			"restore  [#####---------------] 25 %  100/400 files  10.0 MiB of 40.0 MiB  10.0 MiB/s  100 files/s  0:01",
		);
		const later = render("restore", { ...none, files: 100, bytes: 10 * 1024 * 1024 }, total, 5000);
		expect(later).toMatch(/ 25 % .* ETA 0:15$/);
	});

	it("a total that was overtaken (the estimate from the last snapshot) falls back to counts", () => {
		const line = render("backup", { ...none, files: 900, bytes: 90 }, { files: 500, bytes: 50 }, 6000);
		expect(line).not.toMatch(/%|ETA|of /);
		expect(line).toContain("900 files");
	});

	it("rates and times never show NaN or Infinity, even at zero elapsed time", () => {
		for (const elapsed of [0, 1, 999]) {
			const line = render("check", { ...none, items: 0 }, { items: 0 }, elapsed);
			expect(line).not.toMatch(/NaN|Infinity|undefined/);
		}
	});
});

describe("progress drawn on a terminal", () => {
	it("redraws on its own while nothing is updated, so the clock runs and the last count shows", async () => {
		const writes: string[] = [];
		const stream = { columns: 120, isTTY: true, write: (text: string) => writes.push(text) } as unknown as NodeJS.WriteStream;
		const progress = startProgress("backup", true, stream);
		progress.update({ files: 1, bytes: 10 });
		// Within the throttle: not drawn now, and without the timer never.
		progress.update({ files: 6, bytes: 600 });
		await new Promise((resolve) => setTimeout(resolve, 1300));
		progress.stop();
		const lines = writes.filter((w) => w.startsWith("\r") && w.length > 4);
		expect(lines.length).toBeGreaterThanOrEqual(3);
		expect(lines.at(-1)).toMatch(/6 files/);
		expect(lines.at(-1)).toMatch(/0:01/);
		const after = writes.length;
		await new Promise((resolve) => setTimeout(resolve, 400));
		expect(writes.length).toBe(after);
	});
});
