import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Destination } from "../destination/destination.js";

export interface ConformanceSubject {
	readonly destination: Destination;
	/** The time the destination's locks are judged by. */
	now(): Date;
	/** Moves (or waits) until the destination's clock has passed `date`. */
	passTime(until: Date): Promise<void>;
	/** Lock lengths to use: a real server needs seconds, an emulated one any span. */
	readonly shortLockMs: number;
	dispose?(): Promise<void>;
}

/**
 * The suite every destination runs (restic's backend tests in spirit): versioned objects,
 * locks on write, extension only forward, deletes refused while locked, ranges, listing.
 */
export function destinationConformance(name: string, make: () => Promise<ConformanceSubject>): void {
	const body = (text: string) => Buffer.from(text);
	const unique = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}/`;
	const codeOf = async (promise: Promise<unknown>) => {
		try {
			await promise;
			return "resolved";
		} catch (error) {
			return (error as { code?: string }).code ?? String(error);
		}
	};
	const collect = async <T>(iterable: AsyncIterable<T>) => {
		const out: T[] = [];
		for await (const item of iterable) out.push(item);
		return out;
	};

	describe(`destination conformance: ${name}`, () => {
		it("stores, reads whole and by range, and reports absence as NOT_FOUND", async () => {
			const s = await make();
			try {
				const prefix = unique();
				const lock = { mode: "compliance" as const, until: new Date(s.now().getTime() + 3_600_000) };
				const { versionId } = await s.destination.put(`${prefix}a`, body("0123456789"), lock);
				expect(versionId).not.toBe("");
				expect(Buffer.from(await s.destination.get(`${prefix}a`)).toString()).toBe("0123456789");
				expect(Buffer.from(await s.destination.get(`${prefix}a`, { range: { offset: 3, length: 4 } })).toString()).toBe("3456");
				expect(await codeOf(s.destination.get(`${prefix}missing`))).toBe("NOT_FOUND");
				const head = await s.destination.head(`${prefix}a`);
				expect(head?.size).toBe(10);
				expect(head?.lock?.mode).toBe("compliance");
				expect(Math.abs((head?.lock?.until.getTime() ?? 0) - lock.until.getTime())).toBeLessThan(1000);
				expect(await s.destination.head(`${prefix}missing`)).toBeUndefined();
			} finally {
				await s.dispose?.();
			}
		});

		it("lists current keys under a prefix in order, without delete markers", async () => {
			const s = await make();
			try {
				const prefix = unique();
				const lock = { mode: "compliance" as const, until: new Date(s.now().getTime() + 3_600_000) };
				for (const key of ["b", "a", "c/d"]) await s.destination.put(`${prefix}${key}`, body(key), lock);
				await s.destination.put(`${prefix}x`, body("x"));
				await s.destination.deleteMarker(`${prefix}x`);
				const keys = (await collect(s.destination.list(prefix))).map((o) => o.key);
				expect(keys).toEqual([`${prefix}a`, `${prefix}b`, `${prefix}c/d`]);
			} finally {
				await s.dispose?.();
			}
		});

		it("keeps every version: an overwrite or a delete marker leaves the locked version readable", async () => {
			const s = await make();
			try {
				const key = `${unique()}obj`;
				const lock = { mode: "compliance" as const, until: new Date(s.now().getTime() + 3_600_000) };
				const first = await s.destination.put(key, body("original"), lock);
				await s.destination.put(key, body("garbage"));
				expect(Buffer.from(await s.destination.get(key)).toString()).toBe("garbage");
				await s.destination.deleteMarker(key);
				expect(await codeOf(s.destination.get(key))).toBe("NOT_FOUND");
				expect(Buffer.from(await s.destination.get(key, { versionId: first.versionId })).toString()).toBe("original");
				const versions = await collect(s.destination.listVersions(key));
				expect(versions.filter((v) => v.key === key)).toHaveLength(3);
				expect(versions.find((v) => v.versionId === first.versionId)?.isDeleteMarker).toBe(false);
				expect(versions.filter((v) => v.isDeleteMarker)).toHaveLength(1);
				// Listings need not carry locks (S3's do not); head of the version does.
				expect((await s.destination.head(key, first.versionId))?.lock?.mode).toBe("compliance");
			} finally {
				await s.dispose?.();
			}
		});

		it("lists versions in key order, newest first within a key, the latest marked, emulated locks carried", async () => {
			const s = await make();
			try {
				const prefix = unique();
				const lock = { mode: "compliance" as const, until: new Date(s.now().getTime() + 3_600_000) };
				const older = await s.destination.put(`${prefix}b`, body("old"), lock);
				// Stores that stamp versions by the second need the second write in a later one to order them.
				await new Promise((resolve) => setTimeout(resolve, 1100));
				const newer = await s.destination.put(`${prefix}b`, body("new"), lock);
				await s.destination.put(`${prefix}a`, body("a"), lock);
				const versions = (await collect(s.destination.listVersions(prefix))).filter((v) => !v.incomplete);
				expect(versions.map((v) => [v.key, v.versionId])).toEqual([
					[`${prefix}a`, expect.any(String)],
					[`${prefix}b`, newer.versionId],
					[`${prefix}b`, older.versionId],
				]);
				expect(versions.map((v) => v.isLatest)).toEqual([true, true, false]);
				expect(versions.map((v) => v.size)).toEqual([1, 3, 3]);
				// A store that keeps locks itself reports them in listings: grooming and check read them there.
				if (!s.destination.capabilities.enforcedByProvider) {
					for (const version of versions) expect(version.lock?.mode, version.key).toBe("compliance");
				}
			} finally {
				await s.dispose?.();
			}
		});

		it("stores a file's whole bytes through putFile, and leaves the file as it was", async () => {
			const s = await make();
			try {
				if (!s.destination.putFile) return;
				const dir = await mkdtemp(join(tmpdir(), "holdfast-conformance-"));
				try {
					const path = join(dir, "pack");
					const bytes = Buffer.alloc(300_000, 7);
					bytes.write("head", 0);
					await writeFile(path, bytes);
					const key = `${unique()}file`;
					const lock = { mode: "compliance" as const, until: new Date(s.now().getTime() + 3_600_000) };
					const md5 = createHash("md5").update(bytes).digest("base64");
					const { versionId } = await s.destination.putFile({
						key,
						path,
						size: bytes.length,
						lock,
						...(s.destination.capabilities.fileDigests?.includes("md5") ? { digests: { md5 } } : {}),
					});
					expect(Buffer.from(await s.destination.get(key, { versionId })).equals(bytes)).toBe(true);
					expect((await readFile(path)).equals(bytes)).toBe(true);
					expect((await s.destination.head(key, versionId))?.lock?.mode).toBe("compliance");
				} finally {
					await rm(dir, { recursive: true, force: true });
				}
			} finally {
				await s.dispose?.();
			}
		});

		it("refuses to delete or shorten a locked version, and extends it", async () => {
			const s = await make();
			try {
				const key = `${unique()}locked`;
				const until = new Date(s.now().getTime() + 3_600_000);
				const { versionId } = await s.destination.put(key, body("keep me"), { mode: "compliance", until });
				expect(await codeOf(s.destination.deleteVersion(key, versionId))).toBe("LOCKED");
				expect(
					await codeOf(
						s.destination.extendLock(key, versionId, { mode: "compliance", until: new Date(until.getTime() - 600_000) }),
					),
				).toBe("LOCKED");
				const later = new Date(until.getTime() + 86_400_000);
				await s.destination.extendLock(key, versionId, { mode: "compliance", until: later });
				const head = await s.destination.head(key, versionId);
				expect(Math.abs((head?.lock?.until.getTime() ?? 0) - later.getTime())).toBeLessThan(1000);
				expect(Buffer.from(await s.destination.get(key, { versionId })).toString()).toBe("keep me");
			} finally {
				await s.dispose?.();
			}
		});

		it("deletes a version for good once its lock has expired", async () => {
			const s = await make();
			try {
				const key = `${unique()}expiring`;
				const until = new Date(s.now().getTime() + s.shortLockMs);
				const { versionId } = await s.destination.put(key, body("short"), { mode: "compliance", until });
				expect(await codeOf(s.destination.deleteVersion(key, versionId))).toBe("LOCKED");
				await s.passTime(until);
				await s.destination.deleteVersion(key, versionId);
				const versions = (await collect(s.destination.listVersions(key))).filter((v) => v.key === key);
				expect(versions).toHaveLength(0);
				expect(await codeOf(s.destination.get(key))).toBe("NOT_FOUND");
			} finally {
				await s.dispose?.();
			}
		});
	});
}
