import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256Hex, sha256HexAsync } from "./crypto.js";

const reference = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("sha256HexAsync", () => {
	// Small inputs are hashed at once and large ones on the libuv pool: both must give the same digest.
	it.each([0, 1, 4096, 1024 * 1024 - 1, 1024 * 1024, 3 * 1024 * 1024 + 7])("hashes %i bytes as sha256Hex does", async (size) => {
		const data = new Uint8Array(size);
		for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff;
		const digest = await sha256HexAsync(data);
		expect(digest).toBe(reference(data));
		expect(digest).toBe(sha256Hex(data));
	});

	it("hashes only the bytes of a view, not the whole buffer under it", async () => {
		const whole = Buffer.alloc(2 * 1024 * 1024 + 64, 0xab);
		for (const view of [whole.subarray(16, 4096), whole.subarray(32, 32 + 1024 * 1024 + 5)]) {
			expect(await sha256HexAsync(view)).toBe(reference(view));
		}
	});
});
