import type { CatalogCache } from "../../catalog/catalog-cache.js";
import type { LifecycleHooks } from "../../hooks/lifecycle-hooks.js";
import type { Repository } from "../../repository/repository.js";
import { displayPath, type SourceEntry } from "../../source/source.js";
import { type FileState, readFileState, readFileStates, sameFile } from "../file-state.js";
import type { EntryChange, RunContext, RunPlan } from "../run-types.js";

/**
 * The diff of one file against what the catalog remembers of the last run, through the
 * `diff` hook. Where locks cannot be extended, an unchanged file whose stored copy is locked
 * for less than `reuseMinLock` is "reincluded": read and stored again.
 */
export class ChangeDetector {
	constructor(
		private readonly repository: Repository,
		private readonly cache: CatalogCache,
		private readonly hooks: LifecycleHooks,
		private readonly plan: RunPlan,
		private readonly context: RunContext,
	) {}

	/** States looked up ahead of the walk, by key; each is taken once by `diff`. */
	readonly #ahead = new Map<string, FileState | undefined>();

	/** Looks up the states of files the walk is about to reach, in one catalog call instead of one each. */
	async prefetch(stateKeys: readonly string[]): Promise<void> {
		const states = await readFileStates(this.cache, stateKeys);
		for (let i = 0; i < stateKeys.length; i++) this.#ahead.set(stateKeys[i] as string, states[i]);
	}

	async diff(entry: SourceEntry, stateKey: string): Promise<EntryChange> {
		const { index } = this.repository;
		const state = this.#ahead.has(stateKey) ? this.#ahead.get(stateKey) : await readFileState(this.cache, stateKey);
		this.#ahead.delete(stateKey);
		let change: EntryChange = { kind: state ? "changed" : "new" };
		if (sameFile(state, entry)) {
			const missing = state.b.find((id) => !index.reusable(id));
			if (missing === undefined) change = { kind: "unchanged", knownBlobs: state.b };
		}
		change = this.hooks.diff.call(change, { entry, path: displayPath(entry) }, this.context);
		const minLock = this.plan.reuseMinLock;
		if (change.kind === "unchanged" && minLock && change.knownBlobs) {
			const lockOf = (id: string) => index.lockUntil(index.blobs.get(id)?.packKey ?? "");
			const short = change.knownBlobs.find((id) => !index.copyLockedUntil(id, minLock));
			if (short !== undefined) {
				const packKey = index.blobs.get(short)?.packKey ?? "";
				const until = lockOf(short)?.toISOString().slice(0, 10) ?? "?";
				change = {
					kind: "reincluded",
					reason: `lock of ${packKey.slice(0, 16)}… ends ${until}, before ${minLock.toISOString().slice(0, 10)}`,
				};
				this.plan.notes.push(`${displayPath(entry)}: ${change.reason}`);
			}
		}
		return change;
	}
}
