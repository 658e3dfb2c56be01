import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { isHoldfastError } from "../host/errors.js";
import { MemoryLogger } from "../host/logger.js";
import { MemoryDestination } from "../testing/memory-destination.js";
import { EarlyKeyDerivations, type KeyDerivationInput, readUnlockHint, writeUnlockHint } from "./early-key.js";
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

describe("unlock hints", () => {
	const input: KeyDerivationInput = { salt: randomBytes(32).toString("base64"), N: 32768, r: 8, p: 1 };
	const hintFile = async () => join(await mkdtemp(join(tmpdir(), "holdfast-unlock-hints-")), "catalog.sqlite.unlock-hints.json");

	it("gives back what was written for the set and its destination, and nothing for another", async () => {
		const file = await hintFile();
		expect(readUnlockHint(file, "docs", { type: "fs", path: "./repo" })).toBeUndefined();
		writeUnlockHint(file, "docs", { type: "fs", path: "./repo" }, input);
		writeUnlockHint(file, "photos", { type: "fs", path: "./other" }, { ...input, N: 16384 });
		expect(readUnlockHint(file, "docs", { type: "fs", path: "./repo" })).toEqual(input);
		expect(readUnlockHint(file, "photos", { type: "fs", path: "./other" })).toEqual({ ...input, N: 16384 });
		// The set pointed at another destination: its old key file says nothing about the new one.
		expect(readUnlockHint(file, "docs", { type: "fs", path: "./moved" })).toBeUndefined();
		expect(readUnlockHint(file, "music", { type: "fs", path: "./repo" })).toBeUndefined();
		// Nothing secret in it: the salt and parameters a key file holds in the clear.
		expect(await readFile(file, "utf8")).not.toMatch(/master|password/);
	});

	it("treats a damaged or hand-made file, and parameters too costly to derive ahead, as no hint", async () => {
		const file = await hintFile();
		await writeFile(file, "{ not json");
		expect(readUnlockHint(file, "docs", {})).toBeUndefined();
		// A damaged file is replaced by the next write.
		writeUnlockHint(file, "docs", {}, input);
		expect(readUnlockHint(file, "docs", {})).toEqual(input);
		for (const costly of [
			{ ...input, N: 2 ** 20 },
			{ ...input, N: 1000 },
			{ ...input, p: 16 },
			{ ...input, salt: "" },
		]) {
			writeUnlockHint(file, "docs", {}, costly);
			expect(readUnlockHint(file, "docs", {})).toBeUndefined();
		}
	});

	it("a hint that cannot be written is left unwritten, without an error", async () => {
		const file = join(await hintFile(), "under-a-missing-folder", "hints.json");
		expect(() => writeUnlockHint(file, "docs", {}, input)).not.toThrow();
		expect(readUnlockHint(file, "docs", {})).toBeUndefined();
	});
});
