import { addDays, type LockExtension, type LockPlan, type PlannerConfig, type RunContext, type RunPlan } from "@holdfast/core";
import { scheduleOf } from "./schedule.js";

export const PLANNER_DEFAULTS: PlannerConfig = Object.freeze({ strategy: "auto", missedRuns: 0, slackDays: 14 });

export function plannerConfig(context: RunContext): PlannerConfig {
	return { ...PLANNER_DEFAULTS, ...(context.set.planner ?? {}) };
}

/**
 * The look-ahead: from the schedule, when the next run is, and so until when every object
 * the new snapshot uses must stay locked; then how to get there on this destination.
 */
export function planRun(plan: RunPlan, context: RunContext): RunPlan {
	const config = plannerConfig(context);
	const canExtend = context.repository.destination.capabilities.lockExtension;
	const strategy = config.strategy === "auto" ? (canExtend ? "extend" : "reinclude") : config.strategy;
	if (strategy === "extend" && !canExtend) {
		throw new Error(
			`strategy "extend" needs a destination that can extend locks; ${context.repository.destination.description} cannot`,
		);
	}
	const start = context.startedAt;
	const protectUntil = addDays(start, context.set.retention.days);
	const schedule = scheduleOf(context.set.schedule);
	const nextRun = schedule?.next(start);
	let horizon = protectUntil;
	if (schedule && nextRun) {
		// Grace for missed runs: each one pushes the run that renews protection one interval later.
		let at = nextRun;
		for (let i = 0; i < config.missedRuns; i++) at = schedule.next(at);
		horizon = at;
	}
	if (strategy === "extend") {
		// Generations: lock to the need plus a slack, so an object is touched once per slack period.
		const until = addDays(protectUntil, config.slackDays);
		return { ...plan, strategy, protectUntil, horizon, ...(nextRun ? { nextRun } : {}), lock: { mode: plan.lock.mode, until } };
	}
	return {
		...plan,
		strategy,
		protectUntil,
		horizon,
		...(nextRun ? { nextRun } : {}),
		lock: { mode: plan.lock.mode, until: new Date(Math.max(protectUntil.getTime(), horizon.getTime())) },
		reuseMinLock: horizon,
	};
}

/** Extend strategy: every needed object locked short of the snapshot's protect-until gets the run's lock. */
export function planLocks(lockPlan: LockPlan, plan: RunPlan, context: RunContext): LockPlan {
	if (plan.strategy !== "extend") return lockPlan;
	const extensions: LockExtension[] = [...lockPlan.extensions];
	for (const key of lockPlan.needed) {
		const current = context.repository.index.lockUntil(key);
		if (current && current.getTime() >= plan.protectUntil.getTime()) continue;
		const versionId = context.repository.index.versions.get(key);
		extensions.push({
			key,
			...(versionId ? { versionId } : {}),
			from: current,
			to: plan.lock.until,
			mode: plan.lock.mode,
			reason: `needed until ${plan.protectUntil.toISOString().slice(0, 10)}`,
		});
	}
	return { ...lockPlan, extensions };
}
