import { describe, expect, it } from "vitest";
import { HoldfastError, isHoldfastError } from "../host/errors.js";
import { LockRefusedError, ObjectNotFoundError } from "./destination.js";
import { classifyFault, RetryBudget, retryBudgetMs } from "./faults.js";

const status = (code: number) => Object.assign(new Error(`HTTP ${code}`), { $metadata: { httpStatusCode: code } });
const errno = (code: string) => Object.assign(new Error(code), { code });

describe("classifyFault", () => {
	it("tells transient faults from absence, refusal and the rest, through wrapping errors", () => {
		expect(classifyFault(status(503))).toBe("transient");
		expect(classifyFault(status(500))).toBe("transient");
		expect(classifyFault(status(429))).toBe("transient");
		expect(classifyFault(errno("ECONNRESET"))).toBe("transient");
		expect(classifyFault(errno("ECONNREFUSED"))).toBe("transient");
		expect(classifyFault(Object.assign(new Error("stalled"), { name: "TimeoutError" }))).toBe("transient");
		expect(classifyFault(new HoldfastError("DESTINATION", "b2:x: get k", { cause: status(503) }))).toBe("transient");
		expect(classifyFault(new ObjectNotFoundError("k"))).toBe("not-found");
		expect(classifyFault(status(404))).toBe("not-found");
		expect(classifyFault(status(403))).toBe("forbidden");
		expect(classifyFault(new LockRefusedError("locked"))).toBe("forbidden");
		expect(classifyFault(new HoldfastError("UNREACHABLE", "gone"))).toBe("unreachable");
		expect(classifyFault(new HoldfastError("CORRUPT", "bad"))).toBe("other");
		expect(classifyFault(status(400))).toBe("other");
	});
});

describe("RetryBudget", () => {
	it("retries transient faults until the call succeeds", async () => {
		const budget = new RetryBudget("mem:test", { budgetMs: 10_000, baseDelayMs: 1, maxDelayMs: 2 });
		let calls = 0;
		const value = await budget.run("get k", async () => {
			if (++calls < 4) throw errno("ECONNRESET");
			return "answer";
		});
		expect(value).toBe("answer");
		expect(calls).toBe(4);
	});

	it("does not retry what is not transient", async () => {
		const budget = new RetryBudget("mem:test", { budgetMs: 10_000, baseDelayMs: 1 });
		let calls = 0;
		const failure = new ObjectNotFoundError("k");
		await expect(
			budget.run("get k", async () => {
				calls++;
				throw failure;
			}),
		).rejects.toBe(failure);
		expect(calls).toBe(1);
	});

	it("once spent, fails calls after one attempt each until the store answers again", async () => {
		let elapsed = 0;
		const budget = new RetryBudget("mem:test", { budgetMs: 1000, baseDelayMs: 1, maxDelayMs: 2, now: () => elapsed });
		let calls = 0;
		// Each failed attempt takes 400 ms of the budget.
		const down = async (): Promise<string> => {
			calls++;
			elapsed += 400;
			throw status(503);
		};
		const first = await budget.run("get a", down).catch((e: unknown) => e);
		expect(isHoldfastError(first, "UNREACHABLE")).toBe(true);
		expect((first as Error).message).toMatch(/^mem:test is unreachable: get a kept failing for 1\.2 s \(HTTP 503: HTTP 503\)$/);
		expect(calls).toBe(4);
		const second = await budget.run("get b", down).catch((e: unknown) => e);
		expect(isHoldfastError(second, "UNREACHABLE")).toBe(true);
		expect(calls).toBe(5);
		// Much later (a daemon's next run) a failure starts a new outage, with the whole budget.
		elapsed += 5000;
		let later = 0;
		expect(
			await budget.run("get later", async () => {
				if (++later < 2) return down();
				return "later";
			}),
		).toBe("later");
		await budget.run("get b", down).catch(() => undefined);
		expect(await budget.run("get c", async () => "back")).toBe("back");
		// A new outage gets the whole budget again.
		let attempts = 0;
		const value = await budget.run("get d", async () => {
			if (++attempts < 3) return down();
			return "ok";
		});
		expect(value).toBe("ok");
		expect(attempts).toBe(3);
	});

	it("stops at maxAttempts within the budget", async () => {
		const budget = new RetryBudget("mem:test", { budgetMs: 60_000, baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 });
		let calls = 0;
		const error = await budget
			.run("get k", async () => {
				calls++;
				throw status(500);
			})
			.catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE")).toBe(true);
		expect(calls).toBe(3);
	});
});

describe("retryBudgetMs", () => {
	it("takes the set's value, then HOLDFAST_RETRY_BUDGET, then two minutes", () => {
		expect(retryBudgetMs("30s", { HOLDFAST_RETRY_BUDGET: "1s" }, "sets.a.retryBudget")).toBe(30_000);
		expect(retryBudgetMs(undefined, { HOLDFAST_RETRY_BUDGET: "1s" }, "sets.a.retryBudget")).toBe(1_000);
		expect(retryBudgetMs(undefined, {}, "sets.a.retryBudget")).toBe(120_000);
		expect(() => retryBudgetMs("soon", {}, "sets.a.retryBudget")).toThrow('sets.a.retryBudget: "soon" is not a duration');
	});
});
