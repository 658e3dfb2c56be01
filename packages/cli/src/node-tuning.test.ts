import { describe, expect, it } from "vitest";
import { COMPILE_BUDGET, compileBudgetFor, HEAP_GROWTH, HEAP_SLACK, heapGrowthFor } from "./node-tuning.js";

describe("the compile budget", () => {
	it("is set on Node 20's V8 only: later ones do not know the flag, and would print an error at every command", () => {
		expect(compileBudgetFor("11.3.244.8-node.33")).toBe(COMPILE_BUDGET);
		expect(compileBudgetFor("12.4.254.21-node.33")).toBeUndefined();
		expect(compileBudgetFor("13.6.233.10-node.28")).toBeUndefined();
	});
});

describe("the old generation's growth in a restore and a check", () => {
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
