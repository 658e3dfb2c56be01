import {
	ContainerModule,
	definePlugin,
	type RunContext,
	type RunPlan,
	type ScheduleAdvisor,
	STAGE,
	TOKENS,
} from "@holdfast/core";
import { forecaster } from "./forecast.js";
import { plannerConfig, planProtection, planRun, scheduleWarnings } from "./retention-planner.js";

const scheduleAdvisor: ScheduleAdvisor = {
	warnings: (set, maxRetentionDays, now) => scheduleWarnings(set, plannerConfig(set, now), maxRetentionDays),
};

export {
	defaultMarginMs,
	defaultSlackDays,
	PLANNER_DEFAULTS,
	plannerConfig,
	planProtection,
	planRun,
	scheduleWarnings,
} from "./retention-planner.js";
export { type Schedule, scheduleOf } from "./schedule.js";

export default definePlugin({
	name: "retention-planner",
	version: "0.1.0",
	engine: "^0.1.0",
	containerModule: new ContainerModule((options) => {
		options.bind(TOKENS.Forecaster).toConstantValue(forecaster);
		options.bind(TOKENS.ScheduleAdvisor).toConstantValue(scheduleAdvisor);
	}),
	activate(context) {
		// The plan of each run, for the lock step that follows it.
		const plans = new WeakMap<RunContext, RunPlan>();
		context.hooks.plan.tap({ name: context.name, stage: STAGE.RETENTION }, (plan, run) => {
			const planned = planRun(plan, run);
			plans.set(run, planned);
			return planned;
		});
		context.hooks.lock.tap({ name: context.name, stage: STAGE.RETENTION }, (lockPlan, run) => {
			const plan = plans.get(run);
			return plan ? planProtection(lockPlan, plan, run) : lockPlan;
		});
	},
});
