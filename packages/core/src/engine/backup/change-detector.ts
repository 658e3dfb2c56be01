import { isListened, type LifecycleHooks } from "../../hooks/lifecycle-hooks.js";
import { HoldfastError } from "../../host/errors.js";
import type { Repository } from "../../repository/repository.js";
import { displayPath, type SourceEntry } from "../../source/source.js";
import { type FileState, type ScannedFile, sameFile } from "../file-state.js";
import type { EntryChange, RunContext, RunPlan } from "../run-types.js";

/**
 * The diff of one file against what the catalog remembers of the last run, through the
 * `diff` hook. Where locks cannot be extended, an unchanged file whose stored copy is locked
 * for less than `reuseMinLock` is "reincluded": read and stored again.
 */
export class ChangeDetector {
	constructor(
		private readonly repository: Repository,
		private readonly hooks: LifecycleHooks,
		private readonly plan: RunPlan,
		private readonly context: RunContext,
		/** `backup --reread`: a file found unchanged is read and stored again all the same (re-included). */
		private readonly reread = false,
	) {}

	/**
	 * `state` is what the catalog remembers of the file (its folder's states are looked up
	 * together, by the walk); `scanned` its times and inode as text, as its tree node has them.
	 */
	diff(entry: SourceEntry, scanned: ScannedFile, state: FileState | undefined): EntryChange {
		const { index } = this.repository;
		let change: EntryChange = { kind: state ? "changed" : "new" };
		// Size 0 means "unknown until read" for a source (a command's output): only a file that was
		// empty last time too is known unchanged by its metadata; one with content is read again,
		// or the snapshot would record it as 0 bytes.
		if (sameFile(state, entry.size, scanned) && (entry.size > 0 || state[4].length === 0)) {
			const missing = state[4].find((id) => !index.reusable(id));
			if (missing === undefined) {
				change = this.reread ? { kind: "reincluded", reason: "backup --reread" } : { kind: "unchanged", knownBlobs: state[4] };
			}
		}
		const verdict = change;
		if (isListened(this.hooks.diff)) change = this.hooks.diff.call(change, { entry, path: displayPath(entry) }, this.context);
		// Only the core may call a file unchanged with blobs to reuse: a tap that did would have the
		// snapshot point at content that is not the file's, and nothing would read the file.
		if (change.kind === "unchanged" && change.knownBlobs && !sameBlobs(change.knownBlobs, verdict)) {
			throw new HoldfastError(
				"PLUGIN_FAILED",
				`diff: a tap called ${displayPath(entry)} unchanged where the core found it ${verdict.kind === "unchanged" ? "unchanged with other blobs" : verdict.kind}; a tap may only have a file read again`,
			);
		}
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

/** Whether `blobs` are the very blobs the core's verdict `verdict` would reuse. */
function sameBlobs(blobs: readonly string[], verdict: EntryChange): boolean {
	if (verdict.kind !== "unchanged" || !verdict.knownBlobs) return false;
	const known = verdict.knownBlobs;
	return blobs === known || (blobs.length === known.length && blobs.every((id, at) => id === known[at]));
}
