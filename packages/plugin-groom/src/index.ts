import { definePlugin, STAGE } from "@holdfast/core";
import { planGroom } from "./groom-planner.js";

export { GROOM_DEFAULTS, planGroom } from "./groom-planner.js";
export { decideKeep, type KeepDecision } from "./keep-rules.js";

export default definePlugin({
	name: "groom",
	version: "0.1.0",
	engine: "^0.1.0",
	activate(context) {
		context.hooks.groom.tapPromise({ name: context.name, stage: STAGE.DEFAULT }, planGroom);
	},
});
