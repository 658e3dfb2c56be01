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
	const interesting = chosenBranches(errors).filter((e) => e.keyword !== "oneOf" && e.keyword !== "if");
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

/**
 * Where a oneOf failed, the complaints of the branches the value did not mean: a branch for
 * another type (a string where an object was written), and a branch whose required key is
 * missing, when another branch has its keys. `schedule: { every: 7x }` then gets
 * the one line about `every`, not three that contradict each other ("every: must match",
 * "must have required property 'cron'", "every: unknown key").
 */
function chosenBranches(errors: ErrorObject[]): ErrorObject[] {
	const dropped = new Set<string>();
	const merged: ErrorObject[] = [];
	for (const failure of errors.filter((e) => e.keyword === "oneOf")) {
		const prefix = `${failure.schemaPath}/`;
		const branches = new Map<string, ErrorObject[]>();
		for (const error of errors) {
			if (!error.schemaPath.startsWith(prefix)) continue;
			const branch = prefix + error.schemaPath.slice(prefix.length).split("/")[0];
			branches.set(branch, [...(branches.get(branch) ?? []), error]);
		}
		const missesItsKeys = (list: ErrorObject[]) =>
			list.some((e) => e.keyword === "required" && e.instancePath === failure.instancePath);
		// A branch for another type (a string where an object was written) was not meant either.
		const otherType = (list: ErrorObject[]) => list.some((e) => e.keyword === "type" && e.instancePath === failure.instancePath);
		// Branches for another type go first, when some branch is of the value's type.
		const ofType = [...branches].filter(([, list]) => !otherType(list));
		if (ofType.length > 0 && ofType.length < branches.size) {
			for (const [branch, list] of branches) if (otherType(list)) dropped.add(branch);
			for (const [branch] of branches) if (dropped.has(branch)) branches.delete(branch);
		}
		const meant = [...branches].filter(([, list]) => !missesItsKeys(list) && !otherType(list));
		if (meant.length === 0 && branches.size > 1 && [...branches.values()].every(missesItsKeys)) {
			// No branch's keys are there: one line naming each choice, not one "required" per branch.
			const keys = [...branches.values()].flatMap((list) =>
				list
					.filter((e) => e.keyword === "required" && e.instancePath === failure.instancePath)
					.map((e) => (e.params as { missingProperty: string }).missingProperty),
			);
			merged.push({ ...failure, keyword: "required", message: `must have one of ${[...new Set(keys)].join(", ")}` });
			for (const [branch, list] of branches) {
				dropped.add(branch);
				// A misspelt key is still worth its line.
				merged.push(...list.filter((e) => e.keyword === "additionalProperties" && !knownSomewhere(e, branches)));
			}
			continue;
		}
		if (meant.length === 0 || meant.length === branches.size) continue;
		for (const [branch, list] of branches) if (missesItsKeys(list)) dropped.add(branch);
	}
	if (dropped.size === 0) return errors;
	const kept = errors.filter(
		(e) => ![...dropped].some((branch) => e.schemaPath === branch || e.schemaPath.startsWith(`${branch}/`)),
	);
	return [...kept, ...merged];
}

/** True when another branch of the same oneOf has the key one branch called unknown. */
function knownSomewhere(error: ErrorObject, branches: Map<string, ErrorObject[]>): boolean {
	const key = (error.params as { additionalProperty: string }).additionalProperty;
	return [...branches.values()].some(
		(list) =>
			!list.some(
				(e) => e.keyword === "additionalProperties" && (e.params as { additionalProperty: string }).additionalProperty === key,
			),
	);
}

function decodePointer(segment: string): string {
	return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}
