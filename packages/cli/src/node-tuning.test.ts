import { describe, expect, it } from "vitest";
import {
	COMPILE_BUDGET,
	commandOf,
	compileBudgetFor,
	HEAP_GROWTH,
	HEAP_SLACK,
	heapGrowthFor,
	TUNED_MARK,
	wantsTuning,
} from "./node-tuning.js";

const glibc = () => true;

describe("which commands start a second Node with glibc's memory settings", () => {
	it("finds the command past global options and their values", () => {
		expect(commandOf(["--config", "restore", "--quiet", "check", "--read-data"])).toBe("check");
		expect(commandOf(["--now", "2026-01-01", "restore", "latest"])).toBe("restore");
		expect(commandOf(["--json"])).toBeUndefined();
	});

	it("takes restore and check --read-data, and no other command", () => {
		expect(wantsTuning(["restore", "latest", "--target", "x"], {}, glibc)).toBe(true);
		expect(wantsTuning(["--quiet", "check", "--read-data"], {}, glibc)).toBe(true);
		expect(wantsTuning(["check"], {}, glibc)).toBe(false);
		expect(wantsTuning(["backup"], {}, glibc)).toBe(false);
		expect(wantsTuning(["--config", "restore", "snapshots"], {}, glibc)).toBe(false);
	});

	it("never starts a third, leaves the user's own settings alone, and does nothing without glibc", () => {
		expect(wantsTuning(["restore", "latest"], { [TUNED_MARK]: "1" }, glibc)).toBe(false);
		expect(wantsTuning(["restore", "latest"], { MALLOC_ARENA_MAX: "4" }, glibc)).toBe(false);
		expect(wantsTuning(["restore", "latest"], { GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }, glibc)).toBe(false);
		expect(wantsTuning(["restore", "latest"], {}, () => false)).toBe(false);
	});

	it("asks for the C library only for those commands", () => {
		let asked = 0;
		const counting = () => {
			asked++;
			return true;
		};
		wantsTuning(["snapshots"], {}, counting);
		wantsTuning(["--help"], {}, counting);
		expect(asked).toBe(0);
		wantsTuning(["restore", "latest"], {}, counting);
		expect(asked).toBe(1);
	});
});

describe("the compile budget", () => {
	it("is set on Node 20's V8 only: later ones do not know the flag, and would print an error at every command", () => {
		expect(compileBudgetFor("11.3.244.8-node.33")).toBe(COMPILE_BUDGET);
		expect(compileBudgetFor("12.4.254.21-node.33")).toBeUndefined();
		expect(compileBudgetFor("13.6.233.10-node.28")).toBeUndefined();
	});
});

describe("the old generation's growth in the second Node", () => {
	it("lets a small heap grow by 16 MiB, and a large one by 20 %", () => {
		const MiB = 1024 * 1024;
		// 16 MiB on 20 MiB is 80 %; on 30 MiB 53.3 %, taken up to the next step of ten.
		expect(heapGrowthFor(20 * MiB)).toBe("--heap-growing-percent=80");
		expect(heapGrowthFor(30 * MiB)).toBe("--heap-growing-percent=60");
		expect(heapGrowthFor(HEAP_SLACK * 5)).toBe(HEAP_GROWTH);
		expect(heapGrowthFor(500 * MiB)).toBe(HEAP_GROWTH);
		// A heap of a few MiB may grow fivefold, no more.
		expect(heapGrowthFor(2 * MiB)).toBe("--heap-growing-percent=400");
		expect(heapGrowthFor(0)).toBe("--heap-growing-percent=400");
	});
});
