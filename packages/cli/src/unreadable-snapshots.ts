import type { UnreadableObject } from "@holdfast/core";
import { core } from "./commands/run-session.js";

/**
 * The error a listing ends with when snapshot objects did not verify: what was listed is short,
 * and a script must not read it as "these are all the backups" (exit 1, not 0).
 */
export function unreadableSnapshots(unreadable: readonly UnreadableObject[]): Error {
	const ids = unreadable.map((u) => u.id.slice(0, 12));
	const shown = ids.length > 5 ? `${ids.slice(0, 5).join(", ")} and ${ids.length - 5} more` : ids.join(", ");
	return new (core().HoldfastError)(
		"CORRUPT",
		`${unreadable.length === 1 ? "1 snapshot cannot be read" : `${unreadable.length} snapshots cannot be read`} (${shown}): the listing leaves them out; "holdfast check" says why`,
	);
}
