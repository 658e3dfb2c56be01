import { statSync, utimesSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nsToUtimeSeconds } from "./restore-times.js";

describe("nsToUtimeSeconds", () => {
	it("sets every microsecond exactly, where dividing by 1e6 lands one below about half the time", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-times-"));
		try {
			const file = join(dir, "f");
			writeFileSync(file, "x");
			const wrong: bigint[] = [];
			// Seconds across today's range and beyond 2038; microsecond parts spread over the whole second.
			for (let i = 0; i < 2000; i++) {
				const seconds = 1_000_000_000n + BigInt(i) * 1_234_567n;
				const micros = (BigInt(i) * 7_919n * 104_729n) % 1_000_000n;
				const ns = (seconds * 1_000_000n + micros) * 1000n + 789n;
				const time = nsToUtimeSeconds(ns.toString());
				utimesSync(file, time, time);
				const got = statSync(file, { bigint: true }).mtimeNs;
				if (got !== ns - 789n) wrong.push(ns);
			}
			expect(wrong).toEqual([]);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});

	it("keeps times before 1970, which Node would turn into now as a negative number", () => {
		const time = nsToUtimeSeconds("-86400000000000");
		expect(time).toEqual(new Date(-86_400_000));
	});
});
