import { type JsonSchema, type SetConfig, schemaDefaults } from "@holdfast/core";

const duration = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?\\s*(s|m|h|d|w)$" };

/** The `planner` key of a set, which this plugin owns: its schema, defaults inside. */
export const plannerSchema: JsonSchema = {
	type: "object",
	additionalProperties: false,
	default: {},
	properties: {
		strategy: { enum: ["auto", "extend", "reinclude"], default: "auto" },
		missedRuns: { type: "integer", minimum: 0, maximum: 100, default: 0 },
		slackDays: {
			type: "number",
			minimum: 0,
			maximum: 3650,
			description: "extra days each extension or new lock reaches past the need (default: retention / 6, at most 14)",
		},
		margin: {
			...duration,
			description:
				"how long past the next run a copy's lock must reach: the run's duration and clock skew (default: a tenth of the interval, 1 h to 1 d)",
		},
	},
};

export interface PlannerConfig {
	strategy: "auto" | "extend" | "reinclude";
	missedRuns: number;
	/** Default: retention / 6, at most 14. */
	slackDays?: number;
	/** A duration (`6h`); default: a tenth of the schedule's interval, between 1 h and 1 d. */
	margin?: string;
}

export const PLANNER_DEFAULTS: PlannerConfig = schemaDefaults<PlannerConfig>(plannerSchema);

/** A set's `planner` key, defaults filled (the host fills them too; a set built by hand may lack them). */
export function plannerKey(set: SetConfig): PlannerConfig {
	return { ...PLANNER_DEFAULTS, ...((set.planner as Partial<PlannerConfig> | undefined) ?? {}) };
}
