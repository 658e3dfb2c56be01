import { createRequire } from "node:module";
import { parseDuration, type ScheduleConfig } from "@holdfast/core";
import type { Cron as CronType } from "croner";

let cronClass: typeof CronType | undefined;

/** croner is loaded only for a cron schedule (synchronously, from its CommonJS build): most sets say `every`. */
function loadCron(): typeof CronType {
	cronClass ??= (createRequire(import.meta.url)("croner") as { Cron: typeof CronType }).Cron;
	return cronClass;
}

/** Answers a cron schedule keeps before it starts over: a long-running daemon's memo stays small. */
const REMEMBERED_RUNS = 50_000;

/** Each set's schedule, made once: a run asks it for the coming year of runs twice (the plan, then the locks). */
const schedules = new WeakMap<ScheduleConfig, Schedule>();

/** When the set's next runs are, from an interval or a cron expression with a time zone. */
export interface Schedule {
	next(after: Date): Date;
}

export function scheduleOf(config: ScheduleConfig | undefined): Schedule | undefined {
	if (!config) return undefined;
	let schedule = schedules.get(config);
	if (!schedule) {
		schedule = newSchedule(config);
		schedules.set(config, schedule);
	}
	return schedule;
}

/**
 * What makes a schedule unusable, keyed under the set (`schedule.cron: …`): a pattern croner
 * refuses, or one that never runs (the 30th of February).
 */
export function scheduleProblems(config: ScheduleConfig | undefined, now: Date): string[] {
	if (!config || !("cron" in config)) return [];
	try {
		scheduleOf(config)?.next(now);
		return [];
	} catch (error) {
		const reason = (error as Error).message.replace(/^CronPattern: /, "").replace(/^schedule\.cron "[^"]*" /, "");
		return [`schedule.cron: "${config.cron}": ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`];
	}
}

function newSchedule(config: ScheduleConfig): Schedule {
	if ("every" in config) {
		const interval = parseDuration(config.every, "schedule.every");
		return { next: (after) => new Date(after.getTime() + interval) };
	}
	const Cron = loadCron();
	const cron = new Cron(config.cron, { ...(config.tz ? { timezone: config.tz } : {}), paused: true });
	// A pattern's next run after an instant never changes: asked again, croner's answer is remembered.
	const known = new Map<number, number>();
	return {
		next: (after) => {
			const at = after.getTime();
			const remembered = known.get(at);
			if (remembered !== undefined) return new Date(remembered);
			const next = cron.nextRun(after);
			if (!next) throw new Error(`schedule.cron "${config.cron}" has no run after ${after.toISOString()}`);
			if (known.size >= REMEMBERED_RUNS) known.clear();
			known.set(at, next.getTime());
			return next;
		},
	};
}
