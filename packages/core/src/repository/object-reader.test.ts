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

	it("still finds the locked good version behind a newer one that this installation cannot read", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const destination = new MemoryDestination(clock);
		const key = `data/ab/ab${"0".repeat(62)}`;
		await destination.put(key, Buffer.from("GOOD-the pack"), {
			mode: "COMPLIANCE",
			until: new Date("2031-01-01T00:00:00Z"),
		} as never);
		clock.advance(1000);
		// An attacker's newer version whose blob needs zstd, on a reader without it.
		await destination.put(key, Buffer.from("EVIL-a zstd blob"));
		const reader = new ObjectReader(destination);
		const verify = async (bytes: Buffer) => {
			if (bytes.toString() === "EVIL-") throw new HoldfastError("PLUGIN_LOAD", "is compressed with zstd, module did not load");
			if (bytes.toString() !== "GOOD-") throw new HoldfastError("CORRUPT", "does not verify");
			return "good";
		};
		expect(await reader.readRange(key, { offset: 0, length: 5 }, verify)).toBe("good");
	});
});
