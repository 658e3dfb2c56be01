/**
 * The JSON Schema of `holdfast.yaml` as far as the core owns it. Sources, destinations and the
 * set keys plugins own (`planner`, `groom`, …) are closed by the schemas those plugins
 * contribute (see `fullConfigSchema`).
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
		host: {
			type: "string",
			minLength: 1,
			description: "The name this machine's snapshots record (default: its hostname); one per machine of a fleet",
		},
		sets: {
			type: "object",
			minProperties: 1,
			propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]*$" },
			additionalProperties: setSchema,
		},
	},
};

/** The set keys the core owns; every other key of a set belongs to a plugin. */
export const CORE_SET_KEYS: ReadonlySet<string> = new Set(Object.keys(setSchema.properties as object));

/**
 * The schema a config is first read with, before its plugins are loaded: the core's keys are
 * checked, a set's other keys wait for the plugins that own them.
 */
export const envelopeSchema: JsonSchema = (() => {
	const envelope = structuredClone(configSchema) as { properties: { sets: { additionalProperties: JsonSchema } } };
	envelope.properties.sets.additionalProperties = { ...setSchema, additionalProperties: true };
	return envelope;
})();

/** What the configured plugins contribute to the schema. */
export interface SchemaContributions {
	readonly sources: ReadonlyMap<string, JsonSchema>;
	readonly destinations: ReadonlyMap<string, JsonSchema>;
	/** Set keys by name, each with the schema of the plugin that owns it. */
	readonly setKeys: ReadonlyMap<string, JsonSchema>;
}

/** The whole file's schema: each source and destination type and each plugin's set key closed by its plugin's schema. */
export function fullConfigSchema({ sources, destinations, setKeys }: SchemaContributions): JsonSchema {
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
	for (const [key, schema] of setKeys) set.properties[key] = schema;
	const full = structuredClone(configSchema) as { properties: { sets: Record<string, unknown> } };
	full.properties.sets.additionalProperties = set;
	return full;
}
