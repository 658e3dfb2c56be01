import { describe, expect, it } from "vitest";
import { compareNames, decodeName, encodeName, serializeTree, type TreeNode } from "./tree.js";

/** Units a name's text may hold: ASCII, accents, CJK, the top of the BMP, pairs and lone surrogates. */
const UNITS = ["a", "b", "Z", "0", ".", "é", "中", "\uE000", "\uFFFF", "😀", "𝄞", "\uD800", "\uDC00", "b64:"];

function randomName(random: () => number): string {
	const length = Math.floor(random() * 5);
	let name = "";
	for (let i = 0; i < length; i++) name += UNITS[Math.floor(random() * UNITS.length)];
	return name;
}

/** A seeded generator: the same names on every run. */
function seeded(seed: number): () => number {
	let state = seed;
	return () => {
		state = (state * 1103515245 + 12345) % 2147483648;
		return state / 2147483648;
	};
}

describe("encodeName", () => {
	it("keeps a name's leading byte order mark: the name is its bytes", () => {
		const bom = Buffer.from([0xef, 0xbb, 0xbf, 0x61]);
		expect(decodeName(encodeName(bom))).toEqual(bom);
		expect(encodeName(bom)).not.toBe(encodeName(Buffer.from("a")));
	});
});

describe("compareNames", () => {
	it("orders names as their bytes do, for text, pairs, lone surrogates and base64 names", () => {
		const random = seeded(7);
		const names = Array.from({ length: 400 }, () => randomName(random));
		// Names the source encodes from bytes that are not UTF-8.
		names.push(encodeName(Buffer.from([0xff, 0x41])), encodeName(Buffer.from([0xc3])), encodeName(Buffer.from("b64:x")));
		const wrong: string[] = [];
		for (const a of names) {
			for (const b of names) {
				const bytes = Math.sign(Buffer.compare(decodeName(a), decodeName(b)));
				if (Math.sign(compareNames(a, b)) !== bytes) wrong.push(`${JSON.stringify(a)} ${JSON.stringify(b)}: bytes say ${bytes}`);
			}
		}
		expect(wrong).toEqual([]);
	});

	it("sorts a tree's nodes by name bytes, where UTF-16 order differs", () => {
		const node = (name: string): TreeNode => ({ name, type: "file", mode: 0o100644, uid: 0, gid: 0, size: 0, mtime: "0" });
		// By UTF-16 units the pair (U+1F600) comes before U+E000; by bytes it comes after.
		const tree = { nodes: [node("😀"), node("\uE000"), node("b"), node("a")] };
		serializeTree(tree);
		expect(tree.nodes.map((n) => n.name)).toEqual(["a", "b", "\uE000", "😀"]);
	});
});
