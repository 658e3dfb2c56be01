import { parseDuration, type ScheduleConfig } from "@holdfast/core";
import { Cron } from "croner";

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
	const cron = new Cron(config.cron, { ...(config.tz ? { timezone: config.tz } : {}), paused: true });
	return {
		next: (after) => {
			const next = cron.nextRun(after);
			if (!next) throw new Error(`schedule.cron "${config.cron}" has no run after ${after.toISOString()}`);
			return next;
		},
	};
}
