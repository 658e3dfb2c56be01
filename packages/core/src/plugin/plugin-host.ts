import { Container, ContainerModule } from "inversify";
import semver from "semver";
import type { Catalog } from "../catalog/catalog.js";
import { formatProblems } from "../config/config-file.js";
import { CORE_SET_KEYS, type JsonSchema, type SchemaContributions } from "../config/config-schema.js";
import type { LoadedConfig, PluginEntry } from "../config/config-types.js";
import { validateSchema } from "../config/schema-validator.js";
import { createLifecycleHooks, type LifecycleHooks } from "../hooks/lifecycle-hooks.js";
import { attributeTapFailures } from "../hooks/tap-attribution.js";
import type { Clock } from "../host/clock.js";
import { CORE_VERSION } from "../host/core-version.js";
import { DisposableStack } from "../host/disposables.js";
import { HoldfastError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import { TOKENS } from "../host/tokens.js";
import type { DestinationType, PluginContext, PluginDefinition, PluginStore, SourceType } from "./plugin-definition.js";
import { type PluginManifest, resolvePluginManifest } from "./plugin-manifest.js";

export interface LoadedPlugin {
	readonly manifest: PluginManifest;
	readonly definition?: PluginDefinition;
	/** Why the plugin was not imported (its contributions are not used by the config). */
	readonly skipped?: string;
}

export interface PluginHostOptions {
	readonly loaded: LoadedConfig & { locate?: (path: string) => string; setProblems?: readonly string[] };
	readonly clock: Clock;
	readonly logger: Logger;
	readonly catalog: Catalog;
	/** Where to look for plugin packages besides the config's folder (the CLI's own install). */
	readonly searchDirs?: readonly string[];
	/** Definitions given directly (tests, embedders), keyed by the spec used in the config. */
	readonly builtins?: ReadonlyMap<string, PluginDefinition>;
}

/**
 * Loads the plugins a config names, orders them by their dependencies, validates every
 * option before any side effect, activates them with their own context, and disposes
 * them in reverse order.
 */
export class PluginHost {
	readonly hooks: LifecycleHooks = createLifecycleHooks();
	readonly container = new Container({ defaultScope: "Singleton" });
	readonly plugins: LoadedPlugin[] = [];
	readonly #disposables = new DisposableStack();
	readonly #abort = new AbortController();
	/** Each plugin-owned set key's schema, from the plugins that declared it. */
	readonly #setKeys = new Map<string, JsonSchema>();
	#activating: string | undefined;

	constructor(private readonly options: PluginHostOptions) {
		attributeTapFailures(this.hooks, () => this.#activating);
		this.container.bind(TOKENS.Clock).toConstantValue(options.clock);
		this.container.bind(TOKENS.Logger).toConstantValue(options.logger);
		this.container.bind(TOKENS.Hooks).toConstantValue(this.hooks);
		this.container.bind(TOKENS.Catalog).toConstantValue(options.catalog);
		this.container.bind(TOKENS.Config).toConstantValue(options.loaded);
	}

	get signal(): AbortSignal {
		return this.#abort.signal;
	}

	/** Resolve, import, validate, then activate: nothing is activated unless all of it validates. */
	async start(): Promise<void> {
		const { config, dir } = this.options.loaded;
		const entries = config.plugins.map(normalizeEntry);
		const usedTypes = collectUsedTypes(this.options.loaded);
		const candidates: { manifest: PluginManifest; options: Record<string, unknown>; index: number }[] = [];
		for (const [index, entry] of entries.entries()) {
			const builtin = this.options.builtins?.get(entry.use);
			const manifest: PluginManifest = builtin
				? { spec: entry.use, contributes: [], entryUrl: "builtin:" + entry.use, version: builtin.version }
				: resolvePluginManifest(entry.use, dir, this.options.searchDirs ?? []);
			const typed = manifest.contributes.filter((c) => /^(source|destination):/.test(c));
			if (typed.length > 0 && typed.length === manifest.contributes.length && !typed.some((c) => usedTypes.has(c))) {
				this.plugins.push({ manifest, skipped: "not used by any set" });
				continue;
			}
			candidates.push({ manifest, options: entry.options, index });
		}

		const defined: { manifest: PluginManifest; definition: PluginDefinition; options: Record<string, unknown> }[] = [];
		for (const candidate of candidates) {
			checkManifestEngine(candidate.manifest);
			const definition = this.options.builtins?.get(candidate.manifest.spec) ?? (await importDefinition(candidate.manifest));
			checkDefinition(definition, candidate.manifest);
			const problems = definition.optionsSchema
				? validateSchema(definition.optionsSchema, candidate.options, `plugins.${candidate.index}.options`)
				: [];
			if (problems.length > 0) {
				throw new HoldfastError(
					"PLUGIN_OPTIONS",
					`[${definition.name}] options: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`,
				);
			}
			defined.push({ ...candidate, definition });
		}

		const ordered = orderByDependencies(defined);
		for (const plugin of ordered) {
			if (plugin.definition.containerModule) this.container.load(plugin.definition.containerModule);
			this.#claimSetKeys(plugin.definition);
		}
		this.#validateSets();

		try {
			for (const plugin of ordered) {
				this.plugins.push({ manifest: plugin.manifest, definition: plugin.definition });
				await this.#activate(plugin.definition, plugin.options);
			}
		} catch (error) {
			await this.dispose().catch(() => undefined);
			throw error;
		}
	}

	async #activate(definition: PluginDefinition, options: Record<string, unknown>): Promise<void> {
		const disposables = new DisposableStack();
		// A failure while the plugin lets go of its resources names the plugin, as a tap's failure does.
		this.#disposables.add({
			dispose: () =>
				disposables.dispose().catch((cause: unknown) => {
					const message = cause instanceof Error ? cause.message : String(cause);
					throw new HoldfastError("PLUGIN_FAILED", `[${definition.name}] dispose: ${message}`, { cause });
				}),
		});
		const context: PluginContext = {
			name: definition.name,
			options,
			logger: this.options.logger.child(definition.name),
			hooks: this.hooks,
			clock: this.options.clock,
			store: pluginStore(this.options.catalog, definition.name),
			disposables,
			signal: this.#abort.signal,
			configDir: this.options.loaded.dir,
		};
		this.#activating = definition.name;
		try {
			const result = await definition.activate?.(context);
			if (result && typeof result === "object" && "dispose" in result) disposables.add(result);
		} catch (cause) {
			const message = cause instanceof Error ? cause.message : String(cause);
			throw new HoldfastError("PLUGIN_FAILED", `[${definition.name}] activate: ${message}`, { cause });
		} finally {
			this.#activating = undefined;
		}
	}

	sourceTypes(): Map<string, SourceType> {
		return new Map(this.#getAll<SourceType>(TOKENS.SourceType).map((t) => [t.type, t]));
	}

	destinationTypes(): Map<string, DestinationType> {
		return new Map(this.#getAll<DestinationType>(TOKENS.DestinationType).map((t) => [t.type, t]));
	}

	/** What the loaded plugins add to the config's schema. */
	schemas(): SchemaContributions {
		const pick = <T extends { optionsSchema: JsonSchema }>(m: Map<string, T>) =>
			new Map([...m].map(([k, v]) => [k, v.optionsSchema]));
		return { sources: pick(this.sourceTypes()), destinations: pick(this.destinationTypes()), setKeys: new Map(this.#setKeys) };
	}

	#claimSetKeys(definition: PluginDefinition): void {
		for (const [key, schema] of Object.entries(definition.setKeys ?? {})) {
			const owner = CORE_SET_KEYS.has(key) ? "the core" : this.#setKeyOwners.get(key);
			if (owner) throw new HoldfastError("PLUGIN_LOAD", `[${definition.name}] set key "${key}" belongs to ${owner} already`);
			this.#setKeyOwners.set(key, `plugin ${definition.name}`);
			this.#setKeys.set(key, schema);
		}
	}

	readonly #setKeyOwners = new Map<string, string>();

	#getAll<T>(token: symbol): T[] {
		return this.container.isBound(token) ? this.container.getAll<T>(token) : [];
	}

	/**
	 * Each set's source and destination options against the schema of the plugin that owns the
	 * type, and each key of a set the core does not own against the plugin that owns it (its
	 * defaults filled even when the key is absent). All problems are reported at once.
	 */
	#validateSets(): void {
		const { loaded } = this.options;
		const locate = loaded.locate ?? (() => loaded.file);
		const sources = this.sourceTypes();
		const destinations = this.destinationTypes();
		const lines: string[] = [...(loaded.setProblems ?? [])];
		for (const [setName, set] of Object.entries(loaded.config.sets)) {
			const check = (kind: "source" | "destination", path: string, value: { type: string }, schema?: JsonSchema) => {
				if (!schema) {
					lines.push(`${locate(`${path}.type`)}: ${path}.type: no plugin in "plugins" provides ${kind} type "${value.type}"`);
					return;
				}
				const { type: _type, ...rest } = value;
				lines.push(...formatProblems(validateSchema(schema, rest, path), locate));
				Object.assign(value, rest);
			};
			// A set the core's schema refused may lack these; its problems are in `lines` already.
			for (const [i, s] of (Array.isArray(set.sources) ? set.sources : []).entries()) {
				if (typeof s?.type === "string") check("source", `sets.${setName}.sources.${i}`, s, sources.get(s.type)?.optionsSchema);
			}
			if (typeof set.destination?.type === "string") {
				check(
					"destination",
					`sets.${setName}.destination`,
					set.destination,
					destinations.get(set.destination.type)?.optionsSchema,
				);
			}
			const values = set as Record<string, unknown>;
			for (const key of Object.keys(set)) {
				if (CORE_SET_KEYS.has(key) || this.#setKeys.has(key)) continue;
				const path = `sets.${setName}.${key}`;
				lines.push(`${locate(path)}: ${path}: unknown key (no plugin in "plugins" owns it)`);
			}
			for (const [key, schema] of this.#setKeys) {
				if (values[key] === undefined && "default" in schema) values[key] = structuredClone(schema.default);
				if (values[key] === undefined) continue;
				lines.push(...formatProblems(validateSchema(schema, values[key], `sets.${setName}.${key}`), locate));
			}
		}
		if (lines.length > 0) throw new HoldfastError("CONFIG_INVALID", lines.join("\n"));
	}

	async dispose(): Promise<void> {
		this.#abort.abort();
		await this.#disposables.dispose();
	}
}

/**
 * The plugin's view of the catalog: every key under `plugin:<name>:`. The name is escaped, so
 * plugin `a` with key `b:x` and plugin `a:b` with key `x` stay apart; core keys never start so.
 */
function pluginStore(catalog: Catalog, pluginName: string): PluginStore {
	const prefix = `plugin:${encodeURIComponent(pluginName)}:`;
	return {
		get: (key) => catalog.get(prefix + key),
		set: (key, value, ttlMs) => catalog.set(prefix + key, value, ttlMs),
		delete: (key) => catalog.delete(prefix + key),
		has: (key) => catalog.has(prefix + key),
	};
}

function normalizeEntry(entry: PluginEntry): { use: string; options: Record<string, unknown> } {
	return typeof entry === "string" ? { use: entry, options: {} } : { use: entry.use, options: { ...(entry.options ?? {}) } };
}

function collectUsedTypes(loaded: LoadedConfig): Set<string> {
	const used = new Set<string>();
	for (const set of Object.values(loaded.config.sets)) {
		for (const source of Array.isArray(set.sources) ? set.sources : []) used.add(`source:${source?.type}`);
		used.add(`destination:${set.destination?.type}`);
	}
	return used;
}

async function importDefinition(manifest: PluginManifest): Promise<PluginDefinition> {
	let mod: { default?: PluginDefinition };
	try {
		mod = (await import(manifest.entryUrl)) as { default?: PluginDefinition };
	} catch (cause) {
		throw new HoldfastError("PLUGIN_LOAD", `plugin ${manifest.spec}: cannot import: ${(cause as Error).message}`, { cause });
	}
	if (!mod.default) throw new HoldfastError("PLUGIN_LOAD", `plugin ${manifest.spec}: has no default export`);
	return mod.default;
}

/** A package that says which cores it works with is refused before any of its code runs. */
function checkManifestEngine(manifest: PluginManifest): void {
	if (manifest.engine === undefined) return;
	const refusal = engineRefusal(manifest.engine);
	if (refusal) throw new HoldfastError("PLUGIN_LOAD", `plugin ${manifest.spec}: package.json holdfast.engine ${refusal}`);
}

/** Why a plugin's range of cores excludes this one, if it does: not a range, or not this version. */
function engineRefusal(range: string): string | undefined {
	if (!semver.validRange(range)) return `"${range}" is not a semver range`;
	if (!semver.satisfies(CORE_VERSION, range)) return `needs @holdfast/core ${range}, this is ${CORE_VERSION}`;
	return undefined;
}

function checkDefinition(definition: PluginDefinition, manifest: PluginManifest): void {
	const where = `plugin ${manifest.spec}`;
	if (typeof definition?.name !== "string" || definition.name === "") {
		throw new HoldfastError("PLUGIN_LOAD", `${where}: its default export is not a plugin definition (no name)`);
	}
	if (!semver.valid(definition.version)) {
		throw new HoldfastError("PLUGIN_LOAD", `[${definition.name}] version "${definition.version}" is not semver`);
	}
	const refusal = engineRefusal(definition.engine);
	if (refusal) throw new HoldfastError("PLUGIN_LOAD", `[${definition.name}] engine ${refusal}`);
	if (definition.containerModule && !(definition.containerModule instanceof ContainerModule)) {
		throw new HoldfastError("PLUGIN_LOAD", `[${definition.name}] containerModule is not an inversify ContainerModule`);
	}
}

function orderByDependencies<T extends { definition: PluginDefinition }>(plugins: T[]): T[] {
	const byName = new Map(plugins.map((p) => [p.definition.name, p]));
	const ordered: T[] = [];
	const state = new Map<string, "visiting" | "done">();
	const visit = (plugin: T, trail: string[]) => {
		const name = plugin.definition.name;
		if (state.get(name) === "done") return;
		if (state.get(name) === "visiting") {
			throw new HoldfastError("PLUGIN_LOAD", `plugin dependency cycle: ${[...trail, name].join(" -> ")}`);
		}
		state.set(name, "visiting");
		for (const dependency of plugin.definition.dependsOn ?? []) {
			const target = byName.get(dependency);
			if (!target) throw new HoldfastError("PLUGIN_LOAD", `[${name}] needs plugin ${dependency}, which the config does not list`);
			visit(target, [...trail, name]);
		}
		state.set(name, "done");
		ordered.push(plugin);
	};
	for (const plugin of plugins) visit(plugin, []);
	return ordered;
}
