import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { MemoryDestination } from "../testing/memory-destination.js";
import { sha256Hex } from "./crypto.js";
import { MasterIndex } from "./index-file.js";
import { firstWrites, listKeys, ownVersion } from "./object-versions.js";

const clock = new ManualClock("2026-01-01T00:00:00Z");
const bytes = (text: string) => Buffer.from(text);
/** Keys as the format writes them: anything else under its prefixes is not listed as this repository's. */
const A = `snapshots/${"a".repeat(64)}`;
const B = `snapshots/${"b".repeat(64)}`;

describe("object versions", () => {
	it("lists keys a delete marker hides and leaves out keys with no real version", async () => {
		const destination = new MemoryDestination(clock);
		await destination.put(B, bytes("b"));
		await destination.put(A, bytes("a"));
		await destination.deleteMarker(A);
		await destination.deleteMarker(`snapshots/${"c".repeat(64)}`);
		await destination.put("snapshots/notes.txt", bytes("not a snapshot"));
		expect(await listKeys(destination, "snapshots/")).toEqual([A, B]);
	});

	it("dates a key by its first write, not by a later version written over it", async () => {
		const destination = new MemoryDestination(clock);
		clock.set("2026-01-02T00:00:00Z");
		await destination.put(A, bytes("ours"));
		clock.set("2026-01-05T00:00:00Z");
		await destination.put(A, bytes("forged"));
		await destination.deleteMarker(A);
		const written = await firstWrites(destination, "snapshots/");
		expect(written.get(A)?.toISOString()).toBe("2026-01-02T00:00:00.000Z");
	});

	it("finds our version of a content-addressed object under a forged latest one, and remembers it", async () => {
		const destination = new MemoryDestination(clock);
		const content = bytes("pack bytes");
		const hash = sha256Hex(content);
		const key = `data/${hash.slice(0, 2)}/${hash}`;
		const { versionId } = await destination.put(key, content);
		await destination.put(key, bytes("garbage"));
		await destination.put(`${key}x`, content);
		const index = new MasterIndex();
		expect(await ownVersion(destination, index, key)).toBe(versionId);
		expect(index.versions.get(key)).toBe(versionId);
		// Recorded now: the next answer comes from the index, even after the store lost the object.
		destination.objects.delete(key);
		expect(await ownVersion(destination, index, key)).toBe(versionId);
	});

	it("has no version of ours when none verifies", async () => {
		const destination = new MemoryDestination(clock);
		const hash = sha256Hex(bytes("never written"));
		const key = `data/${hash.slice(0, 2)}/${hash}`;
		await destination.put(key, bytes("garbage"));
		expect(await ownVersion(destination, new MasterIndex(), key)).toBeUndefined();
	});
});
