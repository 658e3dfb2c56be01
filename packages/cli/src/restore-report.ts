import type { RestoreSummary } from "@holdfast/core";
import { printLine } from "./output.js";

const LISTED = 20;

/** The paths a restore left as the target had them, so a user sees what is not the snapshot's. */
export function printRestoreSkips(summary: RestoreSummary, skipExisting: boolean): void {
	const kept = summary.skippedExisting;
	if (kept.length > 0) {
		const advice = skipExisting ? "" : " (--overwrite replaces them; --skip-existing keeps them and exits 0)";
		const what =
			kept.length === 1 ? "1 file exists in the target and differs" : `${kept.length} files exist in the target and differ`;
		printLine(`${what} from the snapshot; kept${advice}:`);
		printPaths(kept);
	}
	if (summary.special > 0) {
		const what = summary.special === 1 ? "1 entry is" : `${summary.special} entries are`;
		printLine(`${what} in the snapshot and not recreated (sockets, devices, pipes that could not be made): they hold no data`);
	}
	if (summary.lost.length > 0) {
		const what = summary.lost.length === 1 ? "1 file was" : `${summary.lost.length} files were`;
		printLine(
			`${what} not restored: their data is damaged or missing in the repository (each is named above; "holdfast check --read-data" names the packs):`,
		);
		printPaths(summary.lost);
	}
	const clashes = summary.conflicts;
	if (clashes.length > 0) {
		const what = clashes.length === 1 ? "1 path is" : `${clashes.length} paths are`;
		printLine(`${what} a folder on one side and not on the other; skipped (--overwrite replaces them):`);
		printPaths(clashes);
	}
}

function printPaths(paths: string[]): void {
	for (const path of paths.slice(0, LISTED)) printLine(`  ${path}`);
	if (paths.length > LISTED) printLine(`  … and ${paths.length - LISTED} more (--json lists them all)`);
}
