import type { EntryStat } from "./entry-stat.js";
import { ExcludeMatcher } from "./exclude-matcher.js";

/** What decides which listed entries a walk takes: the source's options, and the set's own repository. */
export interface WalkRules {
	/** gitignore patterns, relative to the root. */
	readonly exclude: string[];
	readonly excludeLargerThan?: number;
	readonly oneFileSystem: boolean;
	/** Folders left out by identity (`dev:ino`): the set's own repository. */
	readonly leftOut: string[];
}

/** Why the walk passes an entry by. */
export type PassedBy = "excluded" | "too-large" | "other-file-system" | "left-out";

/**
 * The walk's choice of entries, in one place for both threads that make it: the walk itself,
 * and the lister's worker that lists ahead the folders the walk will enter (walk-ahead.ts).
 * Were the two to choose differently, the lister's listings would stop matching, and the walk
 * would read every folder itself from then on.
 */
export class WalkFilter {
	readonly #exclude: ExcludeMatcher;
	readonly #leftOut: Set<string>;

	constructor(readonly rules: WalkRules) {
		this.#exclude = new ExcludeMatcher(rules.exclude);
		this.#leftOut = new Set(rules.leftOut);
	}

	/** Whether a pattern excludes the path `rel` (a folder's, with `isDir`). */
	excludes(rel: Buffer, isDir: boolean): boolean {
		if (!this.#exclude.active) return false;
		const relText = rel.toString("utf8");
		return this.#exclude.ignores(isDir ? `${relText}/` : relText);
	}

	/** Undefined when the walk takes the entry at `rel`. */
	passedBy(rel: Buffer, info: EntryStat, rootDevice: bigint): PassedBy | undefined {
		const isDir = info.type === "dir";
		if (this.excludes(rel, isDir)) return "excluded";
		if (info.type === "file" && this.rules.excludeLargerThan !== undefined && info.size > this.rules.excludeLargerThan) {
			return "too-large";
		}
		if (!isDir) return undefined;
		if (this.rules.oneFileSystem && info.dev !== rootDevice) return "other-file-system";
		if (this.#leftOut.has(identityOf(info))) return "left-out";
		return undefined;
	}
}

/** A folder's identity, as links and bind mounts cannot disguise it. */
export function identityOf(info: { readonly dev: bigint; readonly ino: bigint }): string {
	return `${info.dev}:${info.ino}`;
}
