import { createRequire } from "node:module";
import type { Ajv, ErrorObject, Options } from "ajv";
import type { JsonSchema } from "./config-schema.js";
import { precompiledValidators } from "./precompiled-validators.js";

/** Also what the validators compiled ahead of time are compiled with. */
export const AJV_OPTIONS: Options = { allErrors: true, useDefaults: true, strict: false };

let ajv: Ajv | undefined;

/** Loaded when a schema was not compiled ahead of time (a third-party plugin's), so the bundle leaves ajv out. */
function compiler(): Ajv {
	if (!ajv) {
		const { Ajv: AjvClass } = createRequire(import.meta.url)("ajv") as typeof import("ajv");
		ajv = new AjvClass(AJV_OPTIONS);
	}
	return ajv;
}

export interface SchemaProblem {
	/** Dotted key path from the root of the validated value, e.g. `sets.office.retention.days`. */
	readonly path: string;
	readonly message: string;
}

/** Validates (and fills defaults into) `value`; returns one problem per distinct issue. */
export function validateSchema(schema: JsonSchema, value: unknown, basePath = ""): SchemaProblem[] {
	const validate = precompiledValidators.get(JSON.stringify(schema)) ?? compiler().compile(schema);
	if (validate(value)) return [];
	return simplify(validate.errors ?? [], basePath);
}

/**
 * What an object schema fills into an empty object: a plugin reads its defaults from the schema
 * it contributes, so each default is written once.
 */
export function schemaDefaults<T extends object>(schema: JsonSchema): T {
	const value = {};
	validateSchema(schema, value);
	return Object.freeze(value) as T;
}

function simplify(errors: ErrorObject[], basePath: string): SchemaProblem[] {
	// oneOf failures repeat every branch's complaint; keep the most specific ones.
	const interesting = errors.filter((e) => e.keyword !== "oneOf" && e.keyword !== "if");
	const seen = new Set<string>();
	const problems: SchemaProblem[] = [];
	for (const error of interesting.length > 0 ? interesting : errors) {
		const segments = error.instancePath.split("/").slice(1).map(decodePointer);
		if (error.keyword === "additionalProperties") {
			segments.push(String((error.params as { additionalProperty: string }).additionalProperty));
		}
		const path = [basePath, ...segments].filter((s) => s !== "").join(".");
		const message =
			error.keyword === "additionalProperties"
				? "unknown key"
				: error.keyword === "enum"
					? `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`
					: (error.message ?? "is invalid");
		const line = `${path}: ${message}`;
		if (seen.has(line)) continue;
		seen.add(line);
		problems.push({ path, message });
	}
	return problems;
}

function decodePointer(segment: string): string {
	return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}
