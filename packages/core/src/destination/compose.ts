import type { Clock } from "../host/clock.js";
import type { Destination } from "./destination.js";
import { emulateLocks } from "./lock-emulation.js";
import { RetryingDestination, type RetryOptions, retryTransientFaults } from "./retry.js";

/**
 * The destination a set's runs use, built in layers as restic builds its backends, each layer
 * a `Destination` wrapping the one below:
 *
 *   store (the plugin's `create`): classifies its errors, retries nothing
 *   → lock emulation, only where the store declares no Object Lock of its own (`EmulatedLocks`)
 *   → retry of transient faults within the set's budget, then UNREACHABLE (`RetryingDestination`)
 *   → for a dry run (added by the engine when it opens the set), `DryRunDestination`: reads
 *     pass, writes are counted and never sent
 *
 * Retry sits above lock emulation so that an emulated check-then-delete is repeated whole,
 * under its guard. A plugin writes the store alone; the core adds the rest.
 */
export function composeDestination(store: Destination, environment: { readonly clock: Clock } & RetryOptions): Destination {
	// Composed once: a destination that is already the top of the layers stays as it is.
	if (store instanceof RetryingDestination) return store;
	return retryTransientFaults(emulateLocks(store, environment.clock), environment);
}
