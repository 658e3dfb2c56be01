import type { Clock } from "../host/clock.js";
import type { Destination } from "./destination.js";
import { emulateLocks } from "./lock-emulation.js";

/**
 * The destination a set's runs use, built in layers as restic builds its backends, each layer
 * a `Destination` wrapping the one below:
 *
 *   store (the plugin's `create`)
 *   → lock emulation, only where the store declares no Object Lock of its own (`EmulatedLocks`)
 *   → the repository's retry of transient faults (`RetryBudget`, classified by `classifyFault`)
 *   → for a dry run, `DryRunDestination`: reads pass, writes are counted and never sent
 *
 * A plugin writes the store alone; the core adds the rest.
 */
export function composeDestination(store: Destination, environment: { readonly clock: Clock }): Destination {
	return emulateLocks(store, environment.clock);
}
