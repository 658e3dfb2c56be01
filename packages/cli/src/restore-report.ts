import type { RestoreSummary } from "@holdfast/core";
import { printLine } from "./output.js";

const LISTED = 20;

/** The paths a restore left as the target had them, so a user sees what is not the snapshot's. */
export function printRestoreSkips(summary: RestoreSummary, skipExisting: boolean): void {
	const kept = summary.skippedExisting;
	if (kept.length > 0) {
		const advice = skipExisting ? "" : " (--overwrite replaces them; --skip-existing keeps them and exits 0)";
		printLine(`${kept.length} files exist in the target and differ from the snapshot; kept${advice}:`);
		printPaths(kept);
	}
	if (summary.conflicts.length > 0) {
		printLine(
			`${summary.conflicts.length} paths are a folder on one side and not on the other; skipped (--overwrite replaces them):`,
		);
		printPaths(summary.conflicts);
	}
}

function printPaths(paths: string[]): void {
	for (const path of paths.slice(0, LISTED)) printLine(`  ${path}`);
	if (paths.length > LISTED) printLine(`  … and ${paths.length - LISTED} more (--json lists them all)`);
}
