import { type JsonSchema, type SetConfig, schemaDefaults } from "@holdfast/core";

const duration = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?\\s*(s|m|h|d|w)$" };

/** The `groom` key of a set, which this plugin owns: its schema, defaults inside. */
export const groomSchema: JsonSchema = {
	type: "object",
	additionalProperties: false,
	default: {},
	properties: {
		match: { const: "retention", default: "retention" },
		afterBackup: { type: "boolean", default: false },
		keepLast: { type: "integer", minimum: 0 },
		keepDaily: { type: "integer", minimum: 0 },
		keepWeekly: { type: "integer", minimum: 0 },
		keepMonthly: { type: "integer", minimum: 0 },
		keepYearly: { type: "integer", minimum: 0 },
		keepWithin: duration,
		keepTags: { type: "array", items: { type: "string" } },
		graceHours: {
			type: "number",
			minimum: 0,
			description: "nothing younger is deleted, and nothing sooner after grooming marked it (default: the core's 6 h)",
		},
	},
};

export interface GroomConfig {
	match: "retention";
	afterBackup: boolean;
	keepLast?: number;
	keepDaily?: number;
	keepWeekly?: number;
	keepMonthly?: number;
	keepYearly?: number;
	keepWithin?: string;
	keepTags?: string[];
	/** Nothing younger than this is deleted, so a concurrent backup's objects are safe. */
	graceHours?: number;
}

export const GROOM_DEFAULTS: GroomConfig = schemaDefaults<GroomConfig>(groomSchema);

/** A set's `groom` key, defaults filled (the host fills them too; a set built by hand may lack them). */
export function groomKey(set: SetConfig): GroomConfig {
	return { ...GROOM_DEFAULTS, ...((set.groom as Partial<GroomConfig> | undefined) ?? {}) };
}
