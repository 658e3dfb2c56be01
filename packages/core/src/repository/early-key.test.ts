import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { isHoldfastError } from "../host/errors.js";
import { MemoryLogger } from "../host/logger.js";
import { MemoryDestination } from "../testing/memory-destination.js";
import { EarlyKeyDerivations } from "./early-key.js";
import { deriveKey, type KeyDerivationInput } from "./key-derivation.js";
import { Repository } from "./repository.js";

const SCRYPT = { N: 1024, r: 8, p: 1 };

async function repository() {
	const clock = new ManualClock("2030-01-01T00:00:00Z");
	const destination = new MemoryDestination(clock);
	const options = { destination, clock, logger: new MemoryLogger(), scrypt: SCRYPT };
	await Repository.init("right", { mode: "compliance", until: new Date("2030-02-01T00:00:00Z") }, options);
	const first = await Repository.open("right", options);
	return { options, unlockedWith: first.unlockedWith as KeyDerivationInput };
}

describe("unlocking with a key derived ahead", () => {
	it("records the salt and parameters of the key file that opened the repository", async () => {
		const { unlockedWith } = await repository();
		expect(unlockedWith).toMatchObject(SCRYPT);
		expect(Buffer.from(unlockedWith.salt, "base64")).toHaveLength(32);
	});

	it("uses the derivation started for that key file: a wrong key there is a wrong password", async () => {
		const { options, unlockedWith } = await repository();
		const early = new EarlyKeyDerivations();
		early.start("right", unlockedWith);
		const opened = await Repository.open("right", { ...options, earlyKeys: early });
		expect(early.pending).toBe(0);
		expect(opened.unlockedWith).toEqual(unlockedWith);
		// What `take` hands over is what opens the key file: a key derived for another password does not.
		const forged = new (class extends EarlyKeyDerivations {
			override take(): Promise<Buffer> {
				return Promise.resolve(randomBytes(32));
			}
		})();
		const failure = await Repository.open("right", { ...options, earlyKeys: forged }).catch((error: unknown) => error);
		expect(isHoldfastError(failure, "WRONG_PASSWORD")).toBe(true);
	});

	it("takes in a derivation started elsewhere for the same password and key file, and no other", async () => {
		const { options, unlockedWith } = await repository();
		const early = new EarlyKeyDerivations();
		early.adopt("right", unlockedWith, deriveKey("right", Buffer.from(unlockedWith.salt, "base64"), unlockedWith));
		early.adopt("other", unlockedWith, Promise.resolve(randomBytes(32)));
		const opened = await Repository.open("right", { ...options, earlyKeys: early });
		expect(opened.unlockedWith).toEqual(unlockedWith);
		expect(early.pending).toBe(1);
		expect(early.take("right", unlockedWith)).toBeUndefined();
	});

	it("starts nothing over a derivation it took in: that one is what the unlock takes", async () => {
		const { unlockedWith } = await repository();
		const early = new EarlyKeyDerivations();
		const adopted = Promise.resolve(randomBytes(32));
		early.adopt("right", unlockedWith, adopted);
		early.start("right", unlockedWith);
		expect(early.pending).toBe(1);
		expect(early.take("right", unlockedWith)).toBe(adopted);
	});

	it("a wrong password derived ahead is still a wrong password, not an empty repository", async () => {
		const { options, unlockedWith } = await repository();
		const early = new EarlyKeyDerivations();
		early.start("wrong", unlockedWith);
		const failure = await Repository.open("wrong", { ...options, earlyKeys: early }).catch((error: unknown) => error);
		expect(isHoldfastError(failure, "WRONG_PASSWORD")).toBe(true);
	});

	it("leaves a derivation for another salt, another password or other parameters untaken, and derives as before", async () => {
		const { options, unlockedWith } = await repository();
		const early = new EarlyKeyDerivations();
		early.start("right", { ...unlockedWith, salt: randomBytes(32).toString("base64") });
		early.start("other", unlockedWith);
		early.start("right", { ...unlockedWith, N: 2048 });
		const opened = await Repository.open("right", { ...options, earlyKeys: early });
		expect(opened.unlockedWith).toEqual(unlockedWith);
		expect(early.pending).toBe(3);
	});
});
