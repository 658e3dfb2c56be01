import { ContainerModule, definePlugin, type ScheduleAdvisor, STAGE, TOKENS } from "@holdfast/core";
import { forecaster } from "./forecast.js";
import { plannerKey, plannerSchema } from "./planner-config.js";
import { plannerConfig, planProtection, planRun, scheduleWarnings } from "./retention-planner.js";
import { scheduleProblems } from "./schedule.js";

const scheduleAdvisor: ScheduleAdvisor = {
	warnings: (set, maxRetentionDays, now) => scheduleWarnings(set, plannerConfig(set, now), maxRetentionDays),
	allowedMisses: (set) => plannerKey(set).missedRuns,
	problems: (set) => scheduleProblems(set.schedule, new Date()),
};

export { B2_PRICES } from "./forecast.js";
export { PLANNER_DEFAULTS, type PlannerConfig, plannerSchema } from "./planner-config.js";
export {
	defaultMarginMs,
	defaultSlackDays,
	plannerConfig,
	planProtection,
	planRun,
	scheduleWarnings,
} from "./retention-planner.js";
export { type Schedule, scheduleOf, scheduleProblems } from "./schedule.js";

export default definePlugin({
	name: "retention-planner",
	version: "0.1.0",
	engine: "^0.1.0",
	setKeys: { planner: plannerSchema },
	containerModule: new ContainerModule((options) => {
		options.bind(TOKENS.Forecaster).toConstantValue(forecaster);
		options.bind(TOKENS.ScheduleAdvisor).toConstantValue(scheduleAdvisor);
	}),
	activate(context) {
		context.hooks.plan.tap({ name: context.name, stage: STAGE.RETENTION }, planRun);
		// The run carries the plan the `plan` taps made (with this plugin's horizon and strategy).
		context.hooks.lock.tap({ name: context.name, stage: STAGE.RETENTION }, (lockPlan, run) =>
			run.plan ? planProtection(lockPlan, run.plan, run) : lockPlan,
		);
	},
});
