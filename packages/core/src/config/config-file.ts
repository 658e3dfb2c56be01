import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type Document, isNode, LineCounter, parseDocument } from "yaml";
import { HoldfastError } from "../host/errors.js";
import { envelopeSchema } from "./config-schema.js";
import type { HoldfastConfig, LoadedConfig } from "./config-types.js";
import { type SchemaProblem, validateSchema } from "./schema-validator.js";

export const DEFAULT_CONFIG_FILE = "holdfast.yaml";

/** Thrown with one line per problem, each saying file, line and key path. */
export class ConfigError extends HoldfastError {
	constructor(readonly problems: string[]) {
		super("CONFIG_INVALID", problems.join("\n"));
		this.name = "ConfigError";
	}
}

/** Parsed config with the source text kept, so later validation (plugin schemas) can cite lines. */
export interface ParsedConfig extends LoadedConfig {
	/** `file:line` of a key: a dotted path, or its segments when a name may hold a dot (a set's). */
	locate(path: string | readonly (string | number)[]): string;
	/** With `deferSetProblems`: what is wrong inside the sets, for the plugin host to report with its own findings. */
	readonly setProblems?: readonly string[];
}

export interface ParseOptions {
	/**
	 * Problems inside the sets are returned, not thrown: the plugin host reports them together
	 * with what the plugins' schemas find, so one run of the command names every problem.
	 */
	readonly deferSetProblems?: boolean;
}

/**
 * Reads YAML or JSON (JSON is YAML), checks the keys the core owns and fills their defaults;
 * the plugin host checks the rest (types' options, plugins' set keys) once it knows the plugins.
 */
export async function loadConfigFile(file: string, options: ParseOptions = {}): Promise<ParsedConfig> {
	const absolute = resolve(file);
	let text: string;
	try {
		text = await readFile(absolute, "utf8");
	} catch (cause) {
		const reason = (cause as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (cause as Error).message;
		throw new HoldfastError("CONFIG_INVALID", `${file}: cannot read config: ${reason}`, { cause });
	}
	return parseConfigText(text, absolute, options);
}

export function parseConfigText(text: string, file: string, options: ParseOptions = {}): ParsedConfig {
	const lineCounter = new LineCounter();
	const doc = parseDocument(text, { lineCounter, prettyErrors: false });
	if (doc.errors.length > 0) {
		throw new ConfigError(
			doc.errors.map((e) => {
				const pos = lineCounter.linePos(e.pos[0]);
				return `${file}:${pos.line}:${pos.col}: ${e.message.split("\n")[0]}`;
			}),
		);
	}
	const value = doc.toJS() as unknown;
	const locate = (path: string | readonly (string | number)[]) => `${file}${lineOf(doc, lineCounter, path)}`;
	const problems = validateSchema(envelopeSchema, value);
	const inSets = (p: SchemaProblem) => /^sets\.[^.]+\./.test(p.path);
	const deferred = options.deferSetProblems ? problems.filter(inSets) : [];
	const now = problems.filter((p) => !deferred.includes(p));
	if (now.length > 0) throw new ConfigError(formatProblems(problems, locate));
	const parsed = { file, dir: dirname(file), config: value as HoldfastConfig, locate };
	return deferred.length > 0 ? { ...parsed, setProblems: formatProblems(deferred, locate) } : parsed;
}

export function formatProblems(problems: SchemaProblem[], locate: (path: string) => string): string[] {
	return problems.map((p) => `${locate(p.path)}: ${p.path || "(root)"}: ${p.message}`);
}

function lineOf(doc: Document, counter: LineCounter, path: string | readonly (string | number)[]): string {
	const parts = typeof path === "string" ? (path === "" ? [] : path.split(".")) : path;
	const segments = parts.map((s) => (typeof s === "string" && /^\d+$/.test(s) ? Number(s) : s));
	// Walk up until a node exists: an unknown or missing key is reported at its parent.
	for (let n = segments.length; n >= 0; n--) {
		const node = doc.getIn(segments.slice(0, n), true);
		if (isNode(node) && node.range) {
			const pos = counter.linePos(node.range[0]);
			return `:${pos.line}`;
		}
	}
	return "";
}
