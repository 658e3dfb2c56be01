import { resolve } from "node:path";
import type { Argv } from "yargs";
import { EXIT } from "../exit-codes.js";
import { parseNonEmpty } from "../input.js";
import { day, printJson, printLine } from "../output.js";
import { progressWanted, startProgress } from "../progress.js";
import { printRestoreSkips } from "../restore-report.js";
import type { GlobalOptions } from "../session.js";
import { describeTopLevel, toSnapshotPattern } from "../snapshot-paths.js";
import { count } from "../words.js";
import { type Args, core, naming, parseTime, withSession } from "./run-session.js";

/** `holdfast restore`: a snapshot back onto disk, never through a symlink it did not make. */
export function registerRestoreCommand(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	cli.command(
		"restore <snapshot>",
		"restore a snapshot (an ID, latest, or with --at the newest at or before a time)",
		(y) =>
			y
				.positional("snapshot", { type: "string", demandOption: true })
				.option("target", { type: "string", demandOption: true, describe: "folder to restore into" })
				.option("at", { type: "string", describe: "newest snapshot at or before this ISO time" })
				.option("include", { type: "string", array: true, describe: "only paths matching these globs" })
				.option("overwrite", { type: "boolean", describe: "replace what exists in the target and differs" })
				.option("skip-existing", {
					type: "boolean",
					describe: "keep files that exist in the target and differ, and exit 0",
					conflicts: "overwrite",
				})
				.option("set", { type: "string" })
				.option("host", { type: "string", describe: "latest and --at pick among this host's snapshots" })
				.example("$0 restore latest --target /tmp/r --include 'share/docs/**'", "one folder of the newest snapshot")
				.example("$0 restore latest --host laptop-07 --target /tmp/r", "one machine's newest snapshot of the set")
				.example("$0 restore latest --target /tmp/r --include '/srv/share/docs/**'", "the same, by its path on the source"),
		(args) =>
			withSession(
				args as Args,
				async (session) => {
					const { engine } = session;
					const target = resolve(parseNonEmpty(args.target, "--target"));
					const at = parseTime(args.at, "--at");
					const setOption = args.set ? { setName: String(args.set) } : {};
					const host = args.host === undefined ? undefined : parseNonEmpty(args.host, "--host");
					const listed = await engine.list(String(args.snapshot), {
						...setOption,
						...(at ? { at } : {}),
						...(host !== undefined ? { host } : {}),
					});
					const roots = listed.snapshot.snapshot.paths;
					const patterns = ((args.include as string[] | undefined) ?? []).map((p) => toSnapshotPattern(p, roots));
					const { default: ignore } = await import("ignore");
					const matcher = patterns.length > 0 ? ignore().add(patterns) : undefined;
					const include = matcher ? (path: string) => matcher.ignores(path) : undefined;
					// Each pattern must match something, as one alone must: one that matches nothing is a typo.
					const each = patterns.map((pattern) => (pattern.startsWith("!") ? undefined : ignore().add(pattern)));
					const matched = new Set<number>();
					const measured = include
						? (path: string) => {
								if (!include(path)) return false;
								each.forEach((one, at) => {
									if (one && !matched.has(at) && one.ignores(path)) matched.add(at);
								});
								return true;
							}
						: undefined;
					const showProgress = progressWanted(args);
					const { measureRestore } = await import("../restore-scope.js");
					// What the restore will write, found from the trees alone: nothing matched fails before the target is touched.
					const listing = startProgress("restore: reading the file list", showProgress);
					let scope: Awaited<ReturnType<typeof measureRestore>>;
					try {
						scope =
							include || showProgress
								? await measureRestore(listed, measured, core(), (entries) => listing.update({ items: entries }))
								: { files: listed.snapshot.snapshot.summary.files, bytes: listed.snapshot.snapshot.summary.bytes, entries: 1 };
					} finally {
						listing.stop();
					}
					const unmatched = patterns.filter((_, at) => each[at] && !matched.has(at));
					if (include && (scope.entries === 0 || unmatched.length > 0) && scope.lost) {
						// Not a pattern that is wrong, perhaps: what it matches may be in a folder that cannot be read.
						throw new (core().HoldfastError)(
							"CORRUPT",
							`--include ${(scope.entries === 0 ? patterns : unmatched).join(" ")}: matches nothing that can be read in snapshot ${listed.snapshot.id.slice(0, 12)}; the contents of ${describeLost(scope.lost)} cannot be read and may hold it; nothing was restored`,
						);
					}
					if (include && scope.entries === 0) {
						throw new (core().HoldfastError)(
							"NOT_FOUND",
							`--include ${patterns.join(" ")}: matches nothing in snapshot ${listed.snapshot.id.slice(0, 12)}; ${describeTopLevel(scope.topLevel ?? [])}`,
						);
					}
					if (include && unmatched.length > 0) {
						throw new (core().HoldfastError)(
							"NOT_FOUND",
							`--include ${unmatched.join(" ")}: matches nothing in snapshot ${listed.snapshot.id.slice(0, 12)}, though other patterns do; nothing was restored`,
						);
					}
					const progress = startProgress("restore", showProgress);
					progress.setTotal({ files: scope.files, bytes: scope.bytes });
					let files = 0;
					let bytes = 0;
					let result: Awaited<ReturnType<typeof engine.restore>>;
					try {
						result = await naming(session, args.set, () =>
							engine.restore(listed, {
								target,
								...(include ? { include } : {}),
								...(args.overwrite ? { overwrite: true } : {}),
								...(args.skipExisting ? { skipExisting: true } : {}),
								onFile: (_path, size) => {
									files++;
									bytes += size;
									progress.update({ files, bytes });
								},
							}),
						);
					} finally {
						progress.stop();
					}
					const { snapshot, summary } = result;
					if (summary.partial) setExit(EXIT.partial);
					// Files whose data is damaged or gone: the rest is restored, and the run still failed.
					if (summary.lost.length > 0) setExit(EXIT.failed);
					if (args.json) return printJson({ snapshot: snapshot.id, host: snapshot.snapshot.host, ...summary });
					// --quiet: the report is left out; what was kept or skipped is still said.
					if (!args.quiet)
						printLine(
							`restored snapshot ${snapshot.id.slice(0, 12)} (${day(snapshot.snapshot.time)}): ${count(summary.files, "file")}, ${count(summary.dirs, "folder")}, ${count(summary.symlinks, "link")}${summary.fifos > 0 ? `, ${count(summary.fifos, "named pipe")}` : ""}${alreadyInPlace(summary.unchanged)}; wrote ${core().formatBytes(summary.bytes)}`,
						);
					printRestoreSkips(summary, Boolean(args.skipExisting));
				},
				{ unlocksSet: true },
			),
	);
}

/** Folders whose trees cannot be read, the first few by name. */
function describeLost(lost: readonly string[]): string {
	const named = lost.slice(0, 3).map((path) => `${path}/`);
	return lost.length > named.length ? `${named.join(", ")} and ${lost.length - named.length} more folders` : named.join(", ");
}

/** Files and links found identical: a rerun into a full target says why it "wrote 0 B". */
function alreadyInPlace(unchanged: number): string {
	return unchanged > 0 ? ` (${unchanged} already in place)` : "";
}
