import { createRequire } from "node:module";
import type { CronOptions, Cron as CronType } from "croner";

/**
 * Makes croner remember the runs it computed, for simulations of many cron-scheduled backups.
 * At every backup the planner walks the coming year of runs to find the longest interval, so
 * two simulated years of daily runs ask croner for the same few hundred instants again and
 * again; most of such a test's CPU went there. A pattern's next run after an instant never
 * changes, so a remembered answer is the answer croner gives: nothing the planner sees changes.
 * The planner loads croner with `require`, so the class patched here is the one it uses.
 * Returns the function that puts croner back.
 */
export function rememberCronRuns(): () => void {
	const { Cron } = createRequire(import.meta.url)("croner") as { Cron: typeof CronType };
	const original = Cron.prototype.nextRun;
	/** Answers by schedule (pattern and every option that moves a run: time zone, offsets, start and stop, modes), then by instant. */
	const known = new Map<string, Map<number, number | null>>();
	/** Each Cron's schedule key, made once: the planner asks one Cron hundreds of times per plan. */
	const keys = new WeakMap<object, Map<number, number | null>>();
	Cron.prototype.nextRun = function nextRun(this: CronType & { options: CronOptions }, previous) {
		if (!(previous instanceof Date)) return original.call(this, previous);
		let answers = keys.get(this);
		if (!answers) {
			const key = JSON.stringify([this.getPattern(), { ...this.options, context: undefined }]);
			answers = known.get(key) ?? new Map<number, number | null>();
			known.set(key, answers);
			keys.set(this, answers);
		}
		let next = answers.get(previous.getTime());
		if (next === undefined) {
			next = original.call(this, previous)?.getTime() ?? null;
			answers.set(previous.getTime(), next);
		}
		return next === null ? null : new Date(next);
	};
	return () => {
		Cron.prototype.nextRun = original;
	};
}
