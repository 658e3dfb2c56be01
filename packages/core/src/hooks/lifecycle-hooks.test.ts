import { describe, expect, it } from "vitest";
import { createLifecycleHooks, isListened } from "./lifecycle-hooks.js";
import { attributeTapFailures } from "./tap-attribution.js";

describe("isListened", () => {
	it("is false for a hook with no tap, even with the core's own tap-wrapping interceptor", () => {
		const hooks = createLifecycleHooks();
		attributeTapFailures(hooks, () => "core");
		expect(isListened(hooks.didScanEntry)).toBe(false);
		expect(isListened(hooks.diff)).toBe(false);
	});

	it("is true once a plugin taps the hook, or an interceptor watches its calls", () => {
		const hooks = createLifecycleHooks();
		attributeTapFailures(hooks, () => "core");
		hooks.didScanEntry.tap("counter", () => undefined);
		expect(isListened(hooks.didScanEntry)).toBe(true);
		const calls: string[] = [];
		hooks.diff.intercept({ call: (change) => void calls.push(change.kind) });
		expect(isListened(hooks.diff)).toBe(true);
	});

	it("is true for an interceptor that watches only how calls end, which tapable runs without taps", () => {
		const hooks = createLifecycleHooks();
		attributeTapFailures(hooks, () => "core");
		let done = 0;
		hooks.didScanEntry.intercept({ done: () => void done++ });
		expect(isListened(hooks.didScanEntry)).toBe(true);
		const results: string[] = [];
		hooks.diff.intercept({ result: (change) => void results.push(change.kind) });
		expect(isListened(hooks.diff)).toBe(true);
		// What a caller that asked first would have reached: both interceptors are called.
		hooks.didScanEntry.call({ entry: {} as never, path: "/x" });
		hooks.diff.call({ kind: "new" }, { entry: {} as never, path: "/x" }, {} as never);
		expect([done, results]).toEqual([1, ["new"]]);
	});
});
