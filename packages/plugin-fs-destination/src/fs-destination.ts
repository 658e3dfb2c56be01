import { type Clock, EmulatedLocks } from "@holdfast/core";
import { type FsDestinationOptions, FsStore } from "./fs-store.js";

/**
 * A folder with Object Lock emulated from the core's Clock: the {@link FsStore} behind the
 * core's lock emulation, as the engine composes it. Deleting or shortening a locked version is
 * refused just as S3 refuses it; this stops mistakes and scripts, not an attacker who owns the disk.
 */
export class FsDestination extends EmulatedLocks {
	declare readonly store: FsStore;

	constructor(options: FsDestinationOptions, clock: Clock, configDir = process.cwd()) {
		super(new FsStore(options, clock, configDir), clock);
	}
}
