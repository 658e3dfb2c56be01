/**
 * The JSON Schema of `holdfast.yaml`. Sources and destinations are open here and closed by
 * the schemas their plugins contribute (see `fullConfigSchema`).
 */
export type JsonSchema = Record<string, unknown>;

const duration = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?\\s*(s|m|h|d|w)$" };

const typed = {
	type: "object",
	required: ["type"],
	properties: { type: { type: "string", minLength: 1 } },
};

export const setSchema: JsonSchema = {
	type: "object",
	additionalProperties: false,
	required: ["sources", "destination", "retention"],
	properties: {
		sources: { type: "array", minItems: 1, items: typed },
		destination: typed,
		retention: {
			type: "object",
			additionalProperties: false,
			required: ["days"],
			properties: {
				days: { type: "integer", minimum: 1, maximum: 9999 },
				mode: { enum: ["compliance", "governance"], default: "compliance" },
				tiers: {
					type: "array",
					description: "the first backup of each calendar week, month or year (in the schedule's time zone) kept longer",
					items: {
						type: "object",
						additionalProperties: false,
						required: ["every", "days"],
						properties: {
							every: { enum: ["week", "month", "year"] },
							days: { type: "integer", minimum: 1, maximum: 9999 },
						},
					},
				},
			},
		},
		schedule: {
			oneOf: [
				{ type: "object", additionalProperties: false, required: ["every"], properties: { every: duration } },
				{
					type: "object",
					additionalProperties: false,
					required: ["cron"],
					properties: { cron: { type: "string", minLength: 9 }, tz: { type: "string" } },
				},
			],
		},
		planner: {
			type: "object",
			additionalProperties: false,
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
		},
		groom: {
			type: "object",
			additionalProperties: false,
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
				graceHours: { type: "number", minimum: 0, default: 6 },
			},
		},
		tags: { type: "array", items: { type: "string" } },
		packSizeMiB: { type: "integer", minimum: 1, maximum: 512, default: 16 },
		compression: { enum: ["auto", "off"], default: "auto" },
		retryBudget: { ...duration, description: "How long transient destination faults are retried (default 2m)" },
	},
};

const secretRef = {
	oneOf: [
		{
			type: "object",
			additionalProperties: false,
			required: ["env"],
			properties: { env: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$" } },
		},
		{ type: "object", additionalProperties: false, required: ["file"], properties: { file: { type: "string" } } },
	],
};

export const configSchema: JsonSchema = {
	$schema: "http://json-schema.org/draft-07/schema#",
	$id: "https://holdfast.dev/schema/holdfast.json",
	title: "holdfast configuration",
	type: "object",
	additionalProperties: false,
	required: ["plugins", "sets"],
	properties: {
		plugins: {
			type: "array",
			items: {
				oneOf: [
					{ type: "string", minLength: 1 },
					{
						type: "object",
						additionalProperties: false,
						required: ["use"],
						properties: { use: { type: "string" }, options: { type: "object" } },
					},
				],
			},
		},
		catalog: { type: "string", pattern: "^[a-z][a-z0-9+.-]*:" },
		password: secretRef,
		host: { type: "string" },
		sets: {
			type: "object",
			minProperties: 1,
			propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]*$" },
			additionalProperties: setSchema,
		},
	},
};

export const secretRefSchema: JsonSchema = secretRef;

/** The whole file's schema with each source and destination type closed by its plugin's schema. */
export function fullConfigSchema(
	sources: ReadonlyMap<string, JsonSchema>,
	destinations: ReadonlyMap<string, JsonSchema>,
): JsonSchema {
	const variant = (type: string, schema: JsonSchema) => ({
		...schema,
		type: "object",
		required: ["type", ...((schema.required as string[] | undefined) ?? []).filter((k) => k !== "type")],
		properties: { ...((schema.properties as object | undefined) ?? {}), type: { const: type } },
	});
	const set = structuredClone(setSchema) as { properties: Record<string, unknown> };
	if (sources.size > 0) {
		set.properties.sources = { type: "array", minItems: 1, items: { oneOf: [...sources].map(([t, s]) => variant(t, s)) } };
	}
	if (destinations.size > 0) set.properties.destination = { oneOf: [...destinations].map(([t, s]) => variant(t, s)) };
	const full = structuredClone(configSchema) as { properties: { sets: Record<string, unknown> } };
	full.properties.sets.additionalProperties = set;
	return full;
}
