import { chown, mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PackFile, packFileFolder } from "./pack-file.js";

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-pack-file-"));
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

describe("the pack folder", () => {
	it("is one per user, so a second user on the machine is not refused by the first one's folder", () => {
		const uid = process.getuid?.();
		if (uid !== undefined) expect(packFileFolder()).toBe(join(tmpdir(), `holdfast-packs-${uid}`));
	});

	it("is made 0700, and one found open to others is closed before a pack goes in", async () => {
		const made = join(dir, "made");
		const pack = PackFile.create(made);
		await pack.write(Buffer.from("sealed"), 0);
		await pack.remove();
		expect((await stat(made)).mode & 0o777).toBe(0o700);

		const open = join(dir, "open");
		await mkdir(open, { mode: 0o755 });
		const second = PackFile.create(open);
		await second.settled();
		await second.remove();
		expect((await stat(open)).mode & 0o777).toBe(0o700);
	});

	it("is made again when a cleaner removed it between two packs", async () => {
		const folder = join(dir, "cleaned");
		const first = PackFile.create(folder);
		await first.settled();
		await first.remove();
		await rm(folder, { recursive: true });
		const second = PackFile.create(folder);
		await second.write(Buffer.from("sealed"), 0);
		await second.remove();
		expect((await stat(folder)).mode & 0o777).toBe(0o700);
	});

	it.skipIf(process.getuid?.() !== 0)("is refused when another user owns it", async () => {
		const theirs = join(dir, "theirs");
		await mkdir(theirs, { mode: 0o777 });
		await chown(theirs, 4321, 4321);
		const pack = PackFile.create(theirs);
		await expect(pack.settled()).rejects.toThrow(/cannot write a pack being assembled .*belongs to another user/);
		await pack.remove();
	});
});
