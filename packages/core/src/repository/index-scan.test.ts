import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { seal } from "./blob-codec.js";
import { packBlobs } from "./blob-table.js";
import { compress } from "./compression.js";
import { RepositoryKeys } from "./crypto.js";
import { decodeIndexObject, splitIndexFile } from "./index-decode.js";
import type { IndexFile, IndexPack } from "./index-file.js";
import { scanIndexJson } from "./index-scan.js";

type Entry = [number, string, number, number, number];

const entries = (n: number): Entry[] =>
	Array.from({ length: n }, (_, i): Entry => [i % 2, randomBytes(32).toString("hex"), i * 1000, 0xffffffff - i, i]);
const pack = (key: string, blobs: Entry[]): IndexPack => ({
	key,
	version: "v1",
	size: 10,
	mode: "compliance",
	until: "2026-02-01T00:00:00.000Z",
	blobs,
});
const file = (packs: IndexPack[], extra: Partial<IndexFile> = {}): IndexFile => ({
	v: 1,
	created: "2026-01-01T00:00:00.000Z",
	packs,
	locks: [{ key: "snapshots/x", mode: "compliance", until: "2026-02-01T00:00:00.000Z" }],
	self: { mode: "compliance", until: "2026-02-01T00:00:00.000Z" },
	...extra,
});

/** What the general parse makes of the same text: the head with empty blob lists, and each pack's blobs packed. */
function parsed(text: string) {
	const whole = JSON.parse(text) as IndexFile;
	return {
		file: { ...whole, packs: whole.packs.map((p) => ({ ...p, blobs: [] })) },
		packed: whole.packs.map((p) => packBlobs(p.blobs)),
	};
}

describe("scanIndexJson", () => {
	it("reads an index object as writers make it exactly as the general parse does", () => {
		const text = JSON.stringify(
			file([pack("data/aa/one", entries(300)), pack("data/bb/two", []), pack("data/cc/three", entries(1))], {
				deleted: ["data/dd/gone"],
				condemned: [{ key: "data/ee/old", at: "2026-01-02T00:00:00.000Z" }],
			}),
		);
		const scanned = scanIndexJson(Buffer.from(text));
		expect(scanned).toBeDefined();
		expect(scanned?.packed.map((p) => p.count)).toEqual([300, 0, 1]);
		expect(scanned).toEqual(parsed(text));
	});

	it("is not fooled by the word blobs, quotes and backslashes inside strings", () => {
		const tricky = 'data/"blobs":[[0,"x",1,2,3]]\\';
		const text = JSON.stringify(file([{ ...pack(tricky, entries(3)), version: '\\"blobs":[' }]));
		expect(scanIndexJson(Buffer.from(text))).toEqual(parsed(text));
	});

	it.each([
		["spaces between items", (t: string) => t.replace(/\],\[/g, "], [")],
		["an uppercase ID", (t: string) => t.replace(/"([0-9a-f]{64})"/, (_m, h: string) => `"${h.toUpperCase()}"`)],
		["a number past 32 bits", (t: string) => t.replace(/,4294967295,/, ",4294967296,")],
		["a number with a fraction", (t: string) => t.replace(/,4294967295,/, ",4294967295.0,")],
		["an ID of the wrong length", (t: string) => t.replace(/"([0-9a-f]{64})"/, (_m, h: string) => `"${h.slice(2)}"`)],
		["a pack without blobs", (t: string) => t.replace(/,"blobs":\[\]/, "")],
		["a blobs field outside any pack", (t: string) => t.replace(/"self":/, '"blobs":[],"self":')],
		["a pack with two blobs fields", (t: string) => t.replace(/"blobs":\[\]/, '"blobs":[],"blobs":[]')],
		["a second blobs field, spelled with a space", (t: string) => t.replace(/"blobs":\[\]/, '"blobs":[],"blobs" :[1]')],
		["the word blobs as a value", (t: string) => t.replace(/"mode":"compliance"/, '"mode":"blobs"')],
	])("leaves %s to the general parse", (_name, change) => {
		const text = change(JSON.stringify(file([pack("data/aa/one", entries(4)), pack("data/bb/two", [])])));
		expect(text).not.toBe(JSON.stringify(file([pack("data/aa/one", entries(4)), pack("data/bb/two", [])])));
		expect(scanIndexJson(Buffer.from(text))).toBeUndefined();
	});

	it("leaves text that is no JSON to the general parse, which reports it", () => {
		const text = JSON.stringify(file([pack("data/aa/one", entries(2))]));
		expect(scanIndexJson(Buffer.from(text.slice(0, -1)))).toBeUndefined();
		expect(scanIndexJson(Buffer.from(text.slice(0, text.indexOf('"blobs":[') + 20)))).toBeUndefined();
	});
});

describe("decodeIndexObject", () => {
	const keys = RepositoryKeys.fromMaster(RepositoryKeys.generateMaster());
	const sealedJson = (text: string) => seal(keys.raw.encryption, compress(Buffer.from(text), true));

	it("gives the same head and blobs whether an object is scanned or parsed the general way", () => {
		const scannable = file([pack("data/aa/one", entries(50)), pack("data/bb/two", entries(2))]);
		const text = JSON.stringify(scannable);
		// The same object with a space after each comma between entries: the general parse reads it.
		const spaced = text.replace(/\],\[/g, "], [");
		for (const form of ["head", "packed", "stored"] as const) {
			const fast = decodeIndexObject(keys.raw.encryption, sealedJson(text), "index/a", form);
			const slow = decodeIndexObject(keys.raw.encryption, sealedJson(spaced), "index/a", form);
			// Only the general parse says it ran (the worker then collects the garbage it left).
			expect(fast.parsed).toBeUndefined();
			expect(slow.parsed).toBe(true);
			expect(fast).toEqual({ ...slow, parsed: undefined });
			expect(fast).toEqual(splitIndexFile(scannable, form));
		}
	});
});
