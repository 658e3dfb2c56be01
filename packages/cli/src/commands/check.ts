import type { Argv } from "yargs";
import { EXIT } from "../exit-codes.js";
import { parseNumberIn } from "../input.js";
import { day, daysApart, printJson, printLine } from "../output.js";
import { progressWanted, startProgress } from "../progress.js";
import type { GlobalOptions } from "../session.js";
import { count } from "../words.js";
import { printIndexRecovery } from "./repair.js";
import { type Args, core, withSession } from "./run-session.js";

/** `holdfast check`: the repository's structure, its data, and every lock it promises. */
export function registerCheckCommand(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	cli.command(
		"check [set]",
		"verify structure, optionally data, and audit that every snapshot in its window is locked",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("read-data", { type: "boolean", describe: "download and verify every pack" })
				.option("read-data-subset", { type: "string", describe: "download and verify this percentage of packs" })
				.example("$0 check --read-data-subset 10", "verify a tenth of the data"),
		(args) =>
			withSession(
				args as Args,
				async ({ engine }) => {
					const percent = args.readData
						? 100
						: args.readDataSubset === undefined
							? 0
							: parseNumberIn(args.readDataSubset, "--read-data-subset", 0, 100, " (percent of the packs)");
					const progress = startProgress("check: packs", progressWanted(args) && percent > 0);
					let report: Awaited<ReturnType<typeof engine.check>>;
					try {
						report = await engine.check(args.set as string | undefined, {
							readDataPercent: percent,
							onProgress: (done, total) => {
								progress.setTotal({ items: total });
								progress.update({ items: done });
							},
						});
					} finally {
						progress.stop();
					}
					if (args.json) printJson(report);
					else {
						for (const error of report.errors) printLine(`error: ${error}`);
						printIndexRecovery(report);
						if (percent > 0) {
							const packs = (await engine.open(args.set as string | undefined)).repository.index.packs;
							let stored = 0;
							for (const pack of packs.values()) stored += pack.size;
							printLine(
								`data: read and verified ${report.packsRead} of ${count(packs.size, "pack")} (${percent} % asked for) out of ${core().formatBytes(stored)} stored`,
							);
						}
						if (report.reclaimable.objects > 0)
							printLine(
								`reclaimable: ${count(report.reclaimable.objects, "object")} (${core().formatBytes(report.reclaimable.bytes)}) no snapshot needs; grooming deletes them once their grace and locks end`,
							);
						const i = report.immutability;
						printLine(
							`immutability: ${i.covered} of ${count(i.snapshots, "snapshot")} in their window fully locked (${i.lockedObjects} of ${count(i.objects, "object check")})`,
						);
						for (const gap of i.gaps.slice(0, 20))
							printLine(
								`  gap: ${gap.key} locked until ${daysApart(gap.lockedUntil, gap.needed)[0]}, needed until ${daysApart(gap.lockedUntil, gap.needed)[1]} (snapshot ${gap.snapshot.slice(0, 12)})`,
							);
						if (i.renewals.length > 0) {
							const by = i.renewals.map((r) => r.renewedBy).sort()[0];
							printLine(
								`  ${i.renewals.length} lock(s) end inside their window but after the next run, which renews them (by ${day(by)}): planned, not gaps`,
							);
						}
						printLine(report.ok ? "no errors found" : "check found problems");
					}
					if (!report.ok) setExit(EXIT.failed);
				},
				{ unlocksSet: true },
			),
	);
}
