import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import * as zstd from "zstd-napi";
import { CODEC, compress, decompress, encodeBody } from "./compression.js";

const root = join(import.meta.dirname, "../../../..");

/** The codec table of FORMAT.md: `| number | \`name\` | body | written |`. */
function documentedCodecs(): { codec: number; name: string; written: boolean }[] {
	const text = readFileSync(join(root, "FORMAT.md"), "utf8");
	const table = text.slice(text.indexOf("| codec |"));
	const rows = table.split("\n").slice(2);
	const codecs: { codec: number; name: string; written: boolean }[] = [];
	for (const row of rows) {
		const cells = /^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|[^|]*\|\s*([^|]*?)\s*\|$/.exec(row);
		if (!cells) break;
		codecs.push({ codec: Number(cells[1]), name: cells[2] as string, written: /^yes\b/.test(cells[3] as string) });
	}
	return codecs;
}

/** How each named codec makes a body, independently of the code under test. */
const ENCODERS: Record<string, (data: Buffer) => Buffer> = {
	stored: (data) => data,
	deflate: (data) => deflateRawSync(data),
	brotli: (data) => brotliCompressSync(data),
	zstd: (data) => zstd.compress(data, { compressionLevel: 19 }),
};

describe("FORMAT.md's compression codecs", () => {
	const documented = documentedCodecs();
	const text = Buffer.from("every quarter the ledger grows by another few lines\n".repeat(2000));

	it("lists exactly the codecs the code knows, with the same numbers", () => {
		expect(documented.length).toBeGreaterThan(0);
		expect(Object.fromEntries(documented.map((c) => [c.name, c.codec]))).toEqual({ ...CODEC });
	});

	it("each number reads the body its name says", () => {
		for (const { codec, name } of documented) {
			const encode = ENCODERS[name];
			expect(encode, `no reference encoder for codec ${name}`).toBeDefined();
			const framed = Buffer.concat([Buffer.of(codec), (encode as (d: Buffer) => Buffer)(text)]);
			expect(decompress(framed, name).equals(text)).toBe(true);
		}
	});

	/** What writers choose for file content, objects of text and small text, a tree and random data: every codec they write. */
	function writtenCodecs(): number[] {
		const small = text.subarray(0, 1000);
		const tree = Buffer.from(JSON.stringify({ nodes: [{ name: "a.txt", type: "file", content: ["ab".repeat(32)] }] }));
		const chosen = [compress(text, true), compress(small, true), compress(randomBytes(200_000), true)].map((b) => b[0] as number);
		chosen.push(encodeBody(text, true).codec, encodeBody(small, true).codec, encodeBody(tree, true, "tree").codec);
		return [...new Set(chosen)].sort((a, b) => a - b);
	}

	it("writers use exactly the codecs marked written", () => {
		const written = documented.filter((c) => c.written).map((c) => c.codec);
		expect(written).toContain(CODEC.stored);
		expect(writtenCodecs()).toEqual(written.sort((a, b) => a - b));
	});

	it("README's decision on compression names the codecs writers use, the one for file content first", () => {
		const readme = readFileSync(join(root, "README.md"), "utf8");
		const decision = /^- Compression is ((?:.+\n)(?: {2}.+\n)*)/m.exec(readme)?.[1]?.toLowerCase() ?? "";
		const name = (codec: number) => documented.find((c) => c.codec === codec)?.name ?? "?";
		expect(decision).toMatch(new RegExp(`^${name(encodeBody(text, true).codec)}\\b`));
		for (const codec of writtenCodecs()) if (codec !== CODEC.stored) expect(decision).toContain(name(codec));
	});
});
