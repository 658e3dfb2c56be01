import { describe, expect, it } from "vitest";
import {
	COMPILE_BUDGET,
	commandOf,
	compileBudgetFor,
	HEAP_GROWTH,
	heapGrowthFor,
	SMALL_HEAP,
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
	it("is V8's own below a small heap, and held to 20 % from there on", () => {
		expect(heapGrowthFor(20 * 1024 * 1024)).toBe("--heap-growing-percent=0");
		expect(heapGrowthFor(SMALL_HEAP - 1)).toBe("--heap-growing-percent=0");
		expect(heapGrowthFor(SMALL_HEAP)).toBe(HEAP_GROWTH);
		expect(heapGrowthFor(200 * 1024 * 1024)).toBe(HEAP_GROWTH);
	});
});
