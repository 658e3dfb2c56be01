import { ContainerModule, definePlugin, type GroomSchedule, STAGE, TOKENS } from "@holdfast/core";
import { groomKey, groomSchema } from "./groom-config.js";
import { planGroom } from "./groom-planner.js";

export { GROOM_DEFAULTS, type GroomConfig, groomSchema } from "./groom-config.js";
export { planGroom } from "./groom-planner.js";
export { decideKeep, type KeepDecision } from "./keep-rules.js";

export default definePlugin({
	name: "groom",
	version: "0.1.0",
	engine: "^0.1.0",
	setKeys: { groom: groomSchema },
	containerModule: new ContainerModule((options) => {
		options
			.bind(TOKENS.GroomSchedule)
			.toConstantValue({ afterBackup: (set) => groomKey(set).afterBackup } satisfies GroomSchedule);
	}),
	activate(context) {
		context.hooks.groom.tapPromise({ name: context.name, stage: STAGE.DEFAULT }, planGroom);
	},
});
