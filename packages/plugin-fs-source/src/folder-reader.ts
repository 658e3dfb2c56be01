import { readdir, readFile } from "node:fs/promises";
import pLimit from "p-limit";
import { AdaptiveStat } from "./adaptive-stat.js";
import type { EntryStat } from "./entry-stat.js";

export interface ReadOptions {
	/** Stat what links point to instead of the links. */
	readonly follow: boolean;
	/** List only the tag of a folder tagged with a valid CACHEDIR.TAG. */
	readonly excludeCaches: boolean;
	/** Stats in parallel once calls are slow and go through the libuv pool. */
	readonly statConcurrency: number;
}

/** Why an entry has no stat: it vanished since it was listed, or cannot be read. */
export type StatFailure = Error & { code?: string };

/** A folder's names, sorted by bytes, and each one's stat or why it has none. */
export interface FolderListing {
	readonly names: Buffer[];
	readonly stats: (EntryStat | StatFailure)[];
}

const CACHEDIR_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55";
const SLASH = Buffer.from("/");

/**
 * Lists folders and stats their entries, on whichever thread holds it: the walk's, or the
 * lister's worker (folder-lister.ts), which reads folders ahead of the walk.
 */
export class FolderReader {
	readonly #stats = new AdaptiveStat();
	readonly #limit: ReturnType<typeof pLimit>;

	constructor(readonly options: ReadOptions) {
		this.#limit = pLimit(options.statConcurrency);
	}

	/** Throws when the folder cannot be listed; an entry that cannot be stat'ed has its failure in `stats`. */
	async read(dir: Buffer): Promise<FolderListing> {
		// Here while the metadata is cached, through the pool once calls are slow.
		let names = this.#stats.pooled ? await readdir(dir, { encoding: "buffer" }) : this.#stats.listNow(dir);
		names.sort(Buffer.compare);
		if (this.options.excludeCaches && (await isTaggedCache(dir, names))) {
			names = names.filter((n) => n.toString() === "CACHEDIR.TAG");
		}
		const { follow } = this.options;
		const path = (name: Buffer) => Buffer.concat([dir, SLASH, name]);
		// Quick stats are made in a plain loop: a promise and a queue slot per entry cost more than the call.
		const stats = this.#stats.pooled
			? await Promise.all(names.map((name) => this.#limit(() => this.#stats.stat(path(name), follow).catch(asFailure))))
			: names.map((name) => {
					try {
						return this.#stats.statNow(path(name), follow);
					} catch (error) {
						return asFailure(error);
					}
				});
		return { names, stats };
	}
}

export function isFailure(stat: EntryStat | StatFailure): stat is StatFailure {
	return stat instanceof Error;
}

function asFailure(error: unknown): StatFailure {
	return error instanceof Error ? error : new Error(String(error));
}

async function isTaggedCache(dir: Buffer, names: Buffer[]): Promise<boolean> {
	if (!names.some((n) => n.toString() === "CACHEDIR.TAG")) return false;
	try {
		const head = await readFile(Buffer.concat([dir, SLASH, Buffer.from("CACHEDIR.TAG")]));
		return head.subarray(0, CACHEDIR_SIGNATURE.length).toString() === CACHEDIR_SIGNATURE;
	} catch {
		return false;
	}
}
