import {
	ContainerModule,
	type DestinationType,
	definePlugin,
	type PluginDefinition,
	type SetConfig,
	TOKENS,
} from "@holdfast/core";
import { MemoryStore } from "@holdfast/core/testing";

/** The package name a test config lists to use `destination: { type: memory }`. */
export const MEMORY_STORE_PLUGIN = "@holdfast/test-memory-store";

export interface MemoryStoreOptions {
	/** Which store: the same name, the same versions, across every engine the harness opens. */
	readonly name: string;
	readonly lockExtension?: boolean;
}

/** A set's repository in the harness's memory store, named after the folder it would have had. */
export function memoryDestination(dir: string, lockExtension = true): SetConfig["destination"] {
	return { type: "memory", name: `${dir}/repo`, lockExtension } satisfies MemoryStoreOptions & { type: "memory" };
}

/**
 * A destination type `memory` for simulations of hundreds of runs: the core's
 * {@link MemoryStore} behind the same lock emulation the `fs` type gets (the core composes it
 * for any store that does not enforce locks itself), so the planner, the renewals, grooming and
 * the attacker meet the same Object Lock rules. What it leaves out is the folder: a file and a
 * lock record per version, read back on every listing, which the `fs` type's own tests cover and
 * which cost such a simulation more than everything else it does. One plugin per harness: its
 * stores live as long as the harness, across reopened engines.
 */
/** `onStore` sees each store as it is made (a test may wrap its calls). */
export function memoryStorePlugin({ onStore }: { onStore?: (store: MemoryStore) => void } = {}): PluginDefinition {
	const stores = new Map<string, MemoryStore>();
	const type: DestinationType<MemoryStoreOptions> = {
		type: "memory",
		optionsSchema: {
			type: "object",
			additionalProperties: false,
			required: ["name"],
			properties: { name: { type: "string", minLength: 1 }, lockExtension: { type: "boolean" } },
		},
		create: (options, environment) => {
			let store = stores.get(options.name);
			if (!store) {
				const capabilities = options.lockExtension === undefined ? {} : { lockExtension: options.lockExtension };
				store = new MemoryStore(environment.clock, capabilities, `memory:${options.name}`);
				stores.set(options.name, store);
				onStore?.(store);
			}
			return store;
		},
	};
	return definePlugin({
		name: "test-memory-store",
		version: "0.1.0",
		engine: "^0.1.0",
		containerModule: new ContainerModule((options) => {
			options.bind(TOKENS.DestinationType).toConstantValue(type);
		}),
	}) as PluginDefinition;
}
