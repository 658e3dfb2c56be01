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

	it("reads a plain async iterable of chunks", async () => {
		async function* parts() {
			yield Buffer.from("not ");
			yield Buffer.from("a stream");
		}
		expect(Buffer.from(await readBody(parts(), 12)).toString()).toBe("not a stream");
	});

	it("fails when the stream fails or closes before its end", async () => {
		const failing = new Readable({ read() {} });
		const reading = readBody(failing, 100);
		failing.push(Buffer.from("half"));
		failing.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
		await expect(reading).rejects.toThrow("socket hang up");

		const cut = new Readable({ read() {} });
		const cutReading = readBody(cut, 100);
		cut.push(Buffer.from("half"));
		cut.destroy();
		await expect(cutReading).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
	});

	it("gathers a body without a length, or without a body, the general way", async () => {
		const body = { transformToByteArray: async () => new Uint8Array([1, 2, 3]) };
		expect([...(await readBody(body, undefined))]).toEqual([1, 2, 3]);
		expect((await readBody(undefined, 10)).byteLength).toBe(0);
	});
});
