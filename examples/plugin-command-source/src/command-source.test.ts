import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { PluginDefinition } from "@holdfast/core";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "../../../tests/support/harness.js";
import commandSource from "./index.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** Writes `size` deterministic bytes to stdout in small writes, as a dump tool does. */
const LARGE_SCRIPT = `
const size = Number(process.argv[1]);
let x = 2463534242, sent = 0;
const next = () => {
	while (sent < size) {
		const n = Math.min(65536, size - sent), chunk = Buffer.alloc(n);
		for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; chunk[i] = (x >>> 24) & 0x0f; }
		sent += n;
		if (!process.stdout.write(chunk)) return process.stdout.once("drain", next);
	}
};
next();`;

function commandHarness(sources: Record<string, unknown>[]) {
	return createHarness({
		plugins: ["command-source", "@holdfast/plugin-fs-destination"],
		extraBuiltins: new Map([["command-source", commandSource as PluginDefinition]]),
		sets: (dir) => ({
			main: setConfig(dir, { sources: sources.map((s) => ({ type: "command", ...s })) as never }),
		}),
	});
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("the command-source example plugin", () => {
	it("backs up printf's output and a large streamed output, and restores both bit-exactly", async () => {
		const size = 3_000_000;
		harness = await commandHarness([
			{ command: ["printf", "line one\\n\\000\\001\\377 tail %s\\n", "arg"], name: "small.bin" },
			{ command: [process.execPath, "-e", LARGE_SCRIPT, String(size)], name: "large.dump", mode: 0o640 },
		]);
		await harness.engine.init();
		const first = await harness.engine.backup();
		expect(first.partial).toBe(false);
		expect(first.summary.bytes.read).toBe(22 + size);
		expect(first.snapshot?.snapshot.summary.bytes).toBe(22 + size);

		const target = join(harness.dir, "restored");
		await harness.engine.restore("latest", { target });
		expect((await readdir(target)).sort()).toEqual(["large.dump", "small.bin"]);
		const small = await readFile(join(target, "small.bin"));
		expect(small.equals(Buffer.concat([Buffer.from("line one\n"), Buffer.of(0, 1, 255), Buffer.from(" tail arg\n")]))).toBe(true);
		const large = await readFile(join(target, "large.dump"));
		expect(large.length).toBe(size);
		const expected = await new Promise<Buffer>((done, fail) => {
			execFile(process.execPath, ["-e", LARGE_SCRIPT, String(size)], { encoding: "buffer", maxBuffer: 2 * size }, (e, out) =>
				e ? fail(e) : done(out),
			);
		});
		expect(sha256(large)).toBe(sha256(expected));
		expect((await stat(join(target, "large.dump"))).mode & 0o777).toBe(0o640);
		expect((await stat(join(target, "small.bin"))).mode & 0o777).toBe(0o600);

		// The command runs again on the next backup; its unchanged output is not stored again.
		harness.clock.advance(86_400_000);
		const second = await harness.engine.backup();
		expect(second.summary.bytes.read).toBe(22 + size);
		expect(second.summary.bytes.uploaded).toBeLessThan(size / 10);
	});

	it("fails the backup naming the command when it exits with an error, and writes no snapshot", async () => {
		harness = await commandHarness([
			{ command: ["sh", "-c", "printf half-a-dump; echo dump: connection refused >&2; exit 3"], name: "shop.sql" },
		]);
		await harness.engine.init();
		await expect(harness.engine.backup()).rejects.toThrow(
			"[command-source] shop.sql: sh -c 'printf half-a-dump; echo dump: connection refused >&2; exit 3' exited with code 3: dump: connection refused",
		);
		expect(await harness.engine.snapshots()).toEqual([]);
	});

	it("fails the backup when the command cannot start", async () => {
		harness = await commandHarness([{ command: ["holdfast-no-such-program", "--all"], name: "x.sql" }]);
		await harness.engine.init();
		await expect(harness.engine.backup()).rejects.toThrow(
			'[command-source] x.sql: cannot start "holdfast-no-such-program": not found',
		);
	});

	it("checks its options against its schema before anything runs", async () => {
		await expect(commandHarness([{ name: "x.sql" }])).rejects.toThrow(
			/sets\.main\.sources\.0: must have required property 'command'/,
		);
		await expect(commandHarness([{ command: ["true"], name: "a/b" }])).rejects.toThrow(
			/sets\.main\.sources\.0\.name: must match/,
		);
	});
});
