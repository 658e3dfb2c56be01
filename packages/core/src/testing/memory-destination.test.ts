import { ManualClock } from "../host/clock.js";
import { destinationConformance } from "./destination-conformance.js";
import { MemoryDestination } from "./memory-destination.js";

destinationConformance("memory", async () => {
	const clock = new ManualClock("2030-01-01T00:00:00Z");
	return {
		destination: new MemoryDestination(clock),
		now: () => clock.now(),
		passTime: async (until) => clock.set(until.getTime() + 1),
		shortLockMs: 60_000,
	};
});
