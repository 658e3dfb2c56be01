import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SourceWarning } from "@holdfast/core";
import { afterAll, describe, expect, it, vi } from "vitest";

/**
 * The same path as the chmod test (fs-source.test.ts), for runs as root (where chmod 000 does not deny):
 * the permission error is injected at the filesystem call the source makes.
 */
const denied = new Set<string>();
/** Listings made, by the call that made them: on this thread, or through the libuv pool. */
const listings = { direct: 0, pooled: 0 };
const deny = (path: unknown) => {
	if (denied.has(String(path)))
		throw Object.assign(new Error(`EACCES: permission denied, scandir '${String(path)}'`), { code: "EACCES" });
};
vi.mock("node:fs/promises", async (importOriginal) => {
	const actual = await importOriginal<typeof import("node:fs/promises")>();
	return {
		...actual,
		readdir: (async (path: unknown, options?: unknown) => {
			listings.pooled++;
			deny(path);
			return actual.readdir(path as string, options as undefined);
		}) as typeof actual.readdir,
	};
});
vi.mock("node:fs", async (importOriginal) => {
	const actual = await importOriginal<typeof import("node:fs")>();
	return {
		...actual,
		readdirSync: ((path: unknown, options?: unknown) => {
			listings.direct++;
			deny(path);
			return actual.readdirSync(path as string, options as undefined);
		}) as typeof actual.readdirSync,
	};
});

const { FsSource } = await import("./fs-source.js");
const dir = await mkdtemp(join(tmpdir(), "holdfast-denied-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("fs source, permission denied", () => {
	it("skips an unreadable folder with one warning naming it, and goes on", async () => {
		await mkdir(join(dir, "secret"));
		await writeFile(join(dir, "secret/x"), "x");
		await writeFile(join(dir, "visible"), "v");
		denied.add(join(dir, "secret"));
		const warnings: SourceWarning[] = [];
		const paths: string[] = [];
		for await (const entry of new FsSource({ path: dir }).scan({
			signal: new AbortController().signal,
			onSkip: (w) => warnings.push(w),
		})) {
			paths.push(entry.relPath.toString());
		}
		expect(paths).toEqual(["", "secret", "visible"]);
		expect(warnings).toHaveLength(1);
		expect(warnings[0]?.path).toBe(join(dir, "secret"));
		expect(warnings[0]?.reason).toMatch(/^cannot list folder: EACCES/);
	});
});

describe("fs source, where a folder is listed", () => {
	it("lists folders on this thread while listings are quick, not through the pool and back", async () => {
		const root = join(dir, "quick");
		for (const name of ["a", "b", "c"]) await mkdir(join(root, name), { recursive: true });
		listings.direct = 0;
		listings.pooled = 0;
		const paths: string[] = [];
		for await (const entry of new FsSource({ path: root }).scan({
			signal: new AbortController().signal,
			onSkip: () => undefined,
		})) {
			paths.push(entry.relPath.toString());
		}
		expect(paths).toEqual(["", "a", "b", "c"]);
		expect(listings).toEqual({ direct: 4, pooled: 0 });
	});
});
