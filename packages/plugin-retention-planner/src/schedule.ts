import { createRequire } from "node:module";
import { parseDuration, type ScheduleConfig } from "@holdfast/core";
import type { Cron as CronType } from "croner";

/** croner is loaded only for a cron schedule (synchronously, from its CommonJS build): most sets say `every`. */
function loadCron(): typeof CronType {
	return (createRequire(import.meta.url)("croner") as { Cron: typeof CronType }).Cron;
}

/** When the set's next runs are, from an interval or a cron expression with a time zone. */
export interface Schedule {
	next(after: Date): Date;
}

export function scheduleOf(config: ScheduleConfig | undefined): Schedule | undefined {
	if (!config) return undefined;
	if ("every" in config) {
		const interval = parseDuration(config.every, "schedule.every");
		return { next: (after) => new Date(after.getTime() + interval) };
	}
	const Cron = loadCron();
	const cron = new Cron(config.cron, { ...(config.tz ? { timezone: config.tz } : {}), paused: true });
	return {
		next: (after) => {
			const next = cron.nextRun(after);
			if (!next) throw new Error(`schedule.cron "${config.cron}" has no run after ${after.toISOString()}`);
			return next;
		},
	};
}
