import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeFolders, makeFoldersSync } from "./folders.js";

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-folders-"));
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

describe.each([
	["makeFolders", (path: string | Buffer) => makeFolders(path)],
	["makeFoldersSync", async (path: string | Buffer) => makeFoldersSync(path)],
])("%s", (_name, make) => {
	it("makes every missing folder on the way, and accepts one that exists", async () => {
		await make(join(dir, "a/b/c/"));
		expect(statSync(join(dir, "a/b/c")).isDirectory()).toBe(true);
		await make(join(dir, "a/b"));
		await make(Buffer.concat([Buffer.from(join(dir, "a")), Buffer.from([0x2f, 0xff, 0x2f, 0x78])]));
		expect(existsSync(Buffer.concat([Buffer.from(join(dir, "a")), Buffer.from([0x2f, 0xff, 0x2f, 0x78])]))).toBe(true);
	});

	it("ends with ENOENT under a dangling symlink, where Node's recursive mkdir spins forever", async () => {
		await symlink(join(dir, "gone"), join(dir, "dangling"));
		await expect(make(join(dir, "dangling/out/deeper"))).rejects.toMatchObject({ code: "ENOENT" });
	});

	it.skipIf(!existsSync("/proc/self"))("ends under /proc", async () => {
		await expect(make("/proc/holdfast-no-such/x")).rejects.toMatchObject({ code: "ENOENT" });
	});

	it("says ENOTDIR when a file is where a folder should be", async () => {
		await writeFile(join(dir, "file"), "");
		await expect(make(join(dir, "file"))).rejects.toMatchObject({ code: "ENOTDIR" });
		await expect(make(join(dir, "file/x"))).rejects.toMatchObject({ code: "ENOTDIR" });
	});
});
