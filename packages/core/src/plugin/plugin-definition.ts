import type { ContainerModule } from "inversify";
import type { JsonSchema } from "../config/config-schema.js";
import type { Destination } from "../destination/destination.js";
import type { LifecycleHooks } from "../hooks/lifecycle-hooks.js";
import type { Clock } from "../host/clock.js";
import type { Disposable, DisposableStack } from "../host/disposables.js";
import type { Logger } from "../host/logger.js";
import type { Source } from "../source/source.js";

/**
 * A plugin's own part of the catalog: its keys are stored under its name, so no other plugin
 * (nor the core) reads or overwrites them. Like the catalog, a cache: it may be lost.
 */
export interface PluginStore {
	get<T = unknown>(key: string): Promise<T | undefined>;
	/** `ttlMs`: forget the value after this long. */
	set(key: string, value: unknown, ttlMs?: number): Promise<boolean>;
	delete(key: string): Promise<boolean>;
	has(key: string): Promise<boolean>;
}

/** What a plugin gets when it is activated: its own options, logger, store and lifetime. */
export interface PluginContext<Options = Record<string, unknown>> {
	readonly name: string;
	/** Validated against the plugin's `optionsSchema`, defaults filled. */
	readonly options: Options;
	readonly logger: Logger;
	readonly hooks: LifecycleHooks;
	readonly clock: Clock;
	/** The catalog, namespaced to this plugin: keys are its own, whatever other plugins store. */
	readonly store: PluginStore;
	/** Disposed in reverse order when the host shuts down, also after a failure. */
	readonly disposables: DisposableStack;
	readonly signal: AbortSignal;
	/** The config file's folder: a relative path in the plugin's options is relative to it, as in the sets. */
	readonly configDir: string;
}

/** Passed to a source or destination type when the engine creates an instance for a set. */
export interface InstanceEnvironment {
	readonly clock: Clock;
	readonly logger: Logger;
	/** Relative paths in the config are relative to the config file's folder. */
	readonly configDir: string;
	readonly env: NodeJS.ProcessEnv;
	/**
	 * Sources only: absolute paths holdfast itself writes for this set (its repository's folder
	 * when the destination is local). A source of files leaves them out; they are not the user's data.
	 */
	readonly leaveOut?: readonly string[];
}

export interface SourceType<Options = Record<string, unknown>> {
	readonly type: string;
	readonly optionsSchema: JsonSchema;
	create(options: Options, environment: InstanceEnvironment): Source;
}

export interface DestinationType<Options = Record<string, unknown>> {
	readonly type: string;
	readonly optionsSchema: JsonSchema;
	/**
	 * The raw store. One with Object Lock of its own declares `enforcedByProvider: true`; one
	 * without declares `false`, keeps each version's lock as told (a `LockRecordStore`) and the
	 * core wraps it in its lock emulation (`composeDestination`).
	 *
	 * The store classifies its errors and never retries: it throws a fault worth another try
	 * marked as such (`transient: true`, an HTTP status such as 429 or 503, a network `code`
	 * such as ECONNRESET, also as its error's `cause`), and the core's retry layer retries it
	 * with backoff and jitter within the set's `retryBudget`, then fails the run as UNREACHABLE.
	 * Each call must be safe to repeat whole: a `get` whose body was cut off is thrown, not
	 * returned short, and a listing may be started over (the layer skips what it yielded).
	 */
	create(options: Options, environment: InstanceEnvironment): Destination;
}

/** The one object a plugin package default-exports. */
export interface PluginDefinition<Options = Record<string, unknown>> {
	readonly name: string;
	readonly version: string;
	/** The range of `@holdfast/core` versions this plugin was written for (semver). */
	readonly engine: string;
	/** Names of plugins that must be activated before this one. */
	readonly dependsOn?: readonly string[];
	readonly optionsSchema?: JsonSchema;
	/**
	 * The keys of a set this plugin owns (`planner`, `groom`), each with its schema and, inside
	 * it, its defaults. The host checks every set against them before any plugin is activated;
	 * a set key no plugin owns is an error.
	 */
	readonly setKeys?: Readonly<Record<string, JsonSchema>>;
	/** Services the plugin adds to the container (source and destination types, …). */
	readonly containerModule?: ContainerModule;
	// biome-ignore lint/suspicious/noConfusingVoidType: a plugin whose activate returns nothing must type-check as is.
	activate?(context: PluginContext<Options>): void | Disposable | Promise<void | Disposable>;
}

/** Typed identity: lets a plugin author write a definition with checked options. */
export function definePlugin<Options = Record<string, unknown>>(
	definition: PluginDefinition<Options>,
): PluginDefinition<Options> {
	return definition;
}
