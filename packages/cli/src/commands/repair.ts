import type { CheckReport } from "@holdfast/core";
import type { Argv } from "yargs";
import { EXIT } from "../exit-codes.js";
import { day, printJson, printLine } from "../output.js";
import type { GlobalOptions, Session } from "../session.js";

type Args = GlobalOptions & Record<string, unknown>;

export interface RepairCommandDeps {
	readonly withSession: <T>(args: Args, body: (session: Session) => Promise<T>) => Promise<T>;
	readonly setExit: (code: number) => void;
}

/** `holdfast repair index`: relists, from their own headers, the packs no readable index object lists. */
export function registerRepairCommands(cli: Argv<GlobalOptions>, { withSession, setExit }: RepairCommandDeps): void {
	cli.command("repair <what>", "rebuild what a damaged repository lost from what it still has", (y) =>
		y
			.command(
				"index [set]",
				"rebuild index entries from the headers of packs no readable index object lists, in a new index object",
				(z) =>
					z
						.positional("set", { type: "string" })
						.option("dry-run", { type: "boolean", describe: "say what would be written, write nothing" })
						.example("$0 repair index office --dry-run", "what a repair of office's index would write"),
				(args) =>
					withSession(args as Args, async ({ engine }) => {
						const result = await engine.repairIndex(args.set as string | undefined, { dryRun: Boolean(args.dryRun) });
						// Finished, but packs were passed over: like a backup that skipped files.
						if (result.unreadablePacks.length > 0) setExit(EXIT.partial);
						if (args.json) {
							return printJson({
								packsScanned: result.packsScanned,
								packsRecovered: result.packsRecovered,
								blobsRecovered: result.blobsRecovered,
								unreadablePacks: result.unreadablePacks,
								rebuiltIndexes: result.rebuiltIndexes,
								indexObject: result.written ?? null,
								lockUntil: result.wouldWrite ? result.lockUntil : null,
								dryRun: result.dryRun,
							});
						}
						printLine(`packs scanned: ${result.packsScanned} (not listed by any readable index object)`);
						printLine(`packs recovered: ${result.packsRecovered}`);
						printLine(`blobs recovered: ${result.blobsRecovered}`);
						for (const key of result.unreadablePacks) printLine(`error: ${key}: no version has a readable pack header`);
						if (!result.wouldWrite) printLine("nothing to repair: every pack is listed by a readable index object");
						else if (result.dryRun)
							printLine(
								`dry run: would write an index object listing ${result.packsRecovered} packs, locked until ${day(result.lockUntil)}`,
							);
						else printLine(`wrote ${result.written}, locked until ${day(result.lockUntil)}`);
					}),
			)
			.demandCommand(1),
	);
}

/** `check`'s line about the pack-header fallback, when it was needed. */
export function printIndexRecovery(report: CheckReport): void {
	const r = report.indexRecovery;
	if (!r) return;
	const said: string[] = [];
	if (r.unreadableIndexes.length > 0) said.push(`${r.unreadableIndexes.length} index object(s) verify under no version`);
	if (r.packsRecovered > 0)
		said.push(`${r.packsRecovered} pack(s) (${r.blobsRecovered} blobs) were recovered from their headers`);
	// Only what a repair would record earns its hint: headers read in vain are said as such.
	if (said.length > 0) printLine(`note: ${said.join("; ")}; run "holdfast repair index"`);
	else if (r.packsScanned > 0) {
		printLine(`note: ${r.packsScanned} pack header(s) were read for blobs no index lists, and listed none of them`);
	}
	for (const key of r.unreadablePacks) printLine(`  ${key}: no readable pack header`);
}
