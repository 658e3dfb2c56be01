import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CODEC, compress, decompress } from "./compression.js";

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

	it("writers use the codecs marked written: the compressing one for text, stored for random data", () => {
		const written = documented.filter((c) => c.written).map((c) => c.name);
		const compressing = written.filter((name) => name !== "stored");
		expect(compressing).toHaveLength(1);
		expect(compress(text, true)[0]).toBe(CODEC[compressing[0] as keyof typeof CODEC]);
		expect(written).toContain("stored");
		expect(compress(randomBytes(200_000), true)[0]).toBe(CODEC.stored);
	});

	it("README's decision on compression names the codec writers use", () => {
		const readme = readFileSync(join(root, "README.md"), "utf8");
		const decision = /^- Compression is ([^\n]+)/m.exec(readme)?.[1] ?? "";
		const compressing = documented.find((c) => c.written && c.name !== "stored")?.name ?? "?";
		expect(decision.toLowerCase()).toMatch(new RegExp(`^${compressing}\\b`));
	});
});
