import type { Argv } from "yargs";
import { printJson, printLine } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { count } from "../words.js";
import { type Args, core, naming, withSession } from "./run-session.js";

/** `holdfast groom`: forget what left its window and delete what no lock or snapshot holds. */
export function registerGroomCommand(cli: Argv<GlobalOptions>, _setExit: (code: number) => void): void {
	cli.command(
		"groom [set]",
		"forget snapshots past their window and delete what nothing needs and no lock holds",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("dry-run", { type: "boolean", describe: "list what would be deleted, delete nothing" })
				.example("$0 groom office --dry-run", "what grooming would delete"),
		(args) =>
			withSession(
				args as Args,
				async (session) => {
					const result = await naming(session, args.set, () =>
						session.engine.groom(args.set as string | undefined, { dryRun: Boolean(args.dryRun) }),
					);
					if (args.json) {
						return printJson({
							forgotten: result.forgotten,
							deleted: result.deleted,
							marked: result.marked,
							heldByLock: result.heldByLock,
							held: result.held.map((h) => ({ ...h, until: h.until?.toISOString() })),
							deadBytesInLivePacks: result.deadBytesInLivePacks,
							dryRun: result.dryRun,
						});
					}
					// --quiet: a groom that went well prints nothing (cron mails any output).
					if (args.quiet && !args.dryRun) return;
					printLine(`${result.dryRun ? "would forget" : "forgot"} ${count(result.forgotten.length, "snapshot")}`);
					printLine(
						`${result.dryRun ? "would delete" : "deleted"} ${count(result.deleted.objects, "object")} (${core().formatBytes(result.deleted.bytes)})`,
					);
					printLine(
						`${result.dryRun ? "would mark" : "marked"} ${count(result.marked.objects, "object")} (${core().formatBytes(result.marked.bytes)}) no snapshot needs, for deletion by a groom ${result.graceHours} h or more from now${result.marked.locked > 0 ? `; ${result.marked.locked} of them not before their locks end (among those held by locks)` : ""}`,
					);
					printLine(
						`held by locks: ${count(result.heldByLock.objects, "object")} (${core().formatBytes(result.heldByLock.bytes)})`,
					);
					if (args.dryRun) {
						for (const key of result.deleted.keys) printLine(`  delete ${key}`);
						for (const key of result.marked.keys) printLine(`  mark ${key}`);
					}
				},
				{ unlocksSet: true },
			),
	);
}
