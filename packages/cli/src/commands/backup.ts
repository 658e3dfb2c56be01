import type { Argv } from "yargs";
import { EXIT } from "../exit-codes.js";
import { day, printJson, printLine } from "../output.js";
import { progressWanted, startProgress } from "../progress.js";
import type { GlobalOptions } from "../session.js";
import { count } from "../words.js";
import { type Args, core, naming, withSession } from "./run-session.js";

/** `holdfast backup`: one run of a set, with progress on a terminal. */
export function registerBackupCommand(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	cli.command(
		"backup [set]",
		"back up a set now",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("dry-run", {
					type: "boolean",
					describe: "read and chunk like a backup, write nothing: exact counts of what a backup would upload",
				})
				.option("strict-keys", { type: "boolean", describe: "refuse to run with a key that can delete or bypass governance" })
				.option("reread", {
					type: "boolean",
					describe: "read every file, even those the catalog or the last snapshot says are unchanged",
				})
				.example("$0 backup office", "one backup run of the set office"),
		(args) =>
			withSession(
				args as Args,
				async (session) => {
					const { engine, host } = session;
					const showProgress = progressWanted(args);
					// The last snapshot's size is an estimate of the total; worth a look only when progress is shown.
					const last = showProgress ? (await engine.snapshots(args.set as string | undefined)).at(-1) : undefined;
					const progress = startProgress(args.dryRun ? "dry run" : "backup", showProgress);
					if (last) progress.setTotal({ bytes: last.snapshot.summary.bytes, files: last.snapshot.summary.files });
					let files = 0;
					let bytes = 0;
					// Tapped only for a progress bar shown: the walk calls the hook only for those who listen.
					if (showProgress) {
						host.hooks.didScanEntry.tap("progress", ({ entry }) => {
							if (entry.type === "file") files++;
							bytes += entry.size;
							progress.update({ files, bytes });
						});
					}
					let result: Awaited<ReturnType<typeof engine.backup>>;
					try {
						result = await naming(session, args.set, () =>
							engine.backup(args.set as string | undefined, {
								dryRun: Boolean(args.dryRun),
								strictKeys: Boolean(args.strictKeys),
								reread: Boolean(args.reread),
							}),
						);
					} finally {
						progress.stop();
					}
					const s = result.summary;
					if (args.json) {
						printJson({
							snapshot: result.snapshot
								? {
										id: result.snapshot.id,
										host: result.snapshot.snapshot.host,
										time: result.snapshot.snapshot.time,
										protectUntil: result.snapshot.snapshot.protectUntil,
									}
								: null,
							files: s.files,
							bytes: { read: s.bytes.read, uploaded: s.bytes.uploaded },
							objects: s.objects,
							warnings: result.warnings,
							dryRun: Boolean(args.dryRun),
							...(result.groom
								? {
										groom: {
											forgotten: result.groom.forgotten,
											deleted: result.groom.deleted,
											marked: result.groom.marked,
											heldByLock: result.groom.heldByLock,
										},
									}
								: {}),
						});
					} else if (!args.quiet) {
						// --quiet: the report is left out (cron mails any output); warnings about skipped files are not.
						if (result.snapshot)
							printLine(
								`snapshot ${result.snapshot.id.slice(0, 12)} saved, protected until ${day(result.snapshot.snapshot.protectUntil)}`,
							);
						else printLine("dry run: nothing written");
						printLine(
							`files: ${s.files.new} new, ${s.files.changed} changed, ${s.files.unchanged} unchanged, ${s.files.reincluded} re-included, ${s.files.skipped} skipped`,
						);
						const uploaded = `${core().formatBytes(s.bytes.uploaded)} in ${count(s.objects.uploaded, "object")}`;
						// A dry run's counts are exact: the same steps ran, through a destination that stored nothing.
						printLine(
							args.dryRun
								? `read ${core().formatBytes(s.bytes.read)}, would upload ${uploaded}, would extend ${count(s.objects.extended, "lock")}`
								: `read ${core().formatBytes(s.bytes.read)}, uploaded ${uploaded}, ${count(s.objects.extended, "lock")} extended`,
						);
					}
					const seen = s.files.new + s.files.changed + s.files.unchanged + s.files.reincluded + s.files.skipped;
					if (seen === 0) {
						// Most often a wrong path or an exclude that matches everything: say it, not only "0 new".
						const set = result.snapshot?.snapshot.set ?? (args.set as string | undefined);
						session.logger.warn(
							`${set ? `${set}: ` : ""}the sources hold no files, so this backup keeps empty folders only; check the set's paths and excludes`,
						);
					}
					if (result.partial) setExit(EXIT.partial);
				},
				{ unlocksSet: true },
			),
	);
}
