import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { HoldfastError, isHoldfastError } from "../host/errors.js";
import { MemoryDestination } from "../testing/memory-destination.js";
import { ObjectReader } from "./object-reader.js";

describe("ObjectReader", () => {
	it("takes an answer about this installation (no zstd) for what it is, not for damage, and tries no other version", async () => {
		const destination = new MemoryDestination(new ManualClock("2030-01-01T00:00:00Z"));
		await destination.put("data/ab/abcd", Buffer.from("the pack's bytes"));
		const reader = new ObjectReader(destination);
		let calls = 0;
		const error = await reader
			.readRange("data/ab/abcd", { offset: 0, length: 5 }, async () => {
				calls++;
				throw new HoldfastError("PLUGIN_LOAD", "blob x: is compressed with zstd, and the zstd-napi module did not load");
			})
			.catch((caught: unknown) => caught);
		expect(isHoldfastError(error, "PLUGIN_LOAD")).toBe(true);
		expect(calls).toBe(1);

		// Damage is still reported as damage.
		const damaged = await reader
			.readRange("data/ab/abcd", { offset: 0, length: 5 }, async () => {
				throw new HoldfastError("CORRUPT", "blob x: authentication failed");
			})
			.catch((caught: unknown) => caught);
		expect(isHoldfastError(damaged, "CORRUPT")).toBe(true);
	});
});
