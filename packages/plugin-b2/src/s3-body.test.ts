import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readBody } from "./s3-body.js";

const chunks = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)));

describe("readBody", () => {
	it("fills one buffer of the announced length from the body's chunks, in order", async () => {
		const out = await readBody(chunks("pack ", "bytes ", "in three"), 19);
		expect(Buffer.from(out).toString()).toBe("pack bytes in three");
		expect(out.byteLength).toBe(19);
	});

	it("returns only what arrived when the body is shorter than announced", async () => {
		const out = await readBody(chunks("short"), 12);
		expect(Buffer.from(out).toString()).toBe("short");
	});

	it("keeps every byte when the body is longer than announced", async () => {
		const out = await readBody(chunks("more ", "than ", "said"), 4);
		expect(Buffer.from(out).toString()).toBe("more than said");
	});

	it("gathers a body without a length, or without a body, the general way", async () => {
		const body = { transformToByteArray: async () => new Uint8Array([1, 2, 3]) };
		expect([...(await readBody(body, undefined))]).toEqual([1, 2, 3]);
		expect((await readBody(undefined, 10)).byteLength).toBe(0);
	});
});
