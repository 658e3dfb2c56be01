import type { Argv } from "yargs";
import { parseNonEmpty } from "../input.js";
import { day, printJson, printTable } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { type Args, core, withSession } from "./run-session.js";

/** `holdfast status`: per set and host, the last backup, the next run and how long it is protected. */
export function registerStatusCommand(cli: Argv<GlobalOptions>, _setExit: (code: number) => void): void {
	cli.command(
		"status [set]",
		"per set and host: last backup, next run, protected until, earliest lock, snapshots in window, stored bytes",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("host", { type: "string", describe: "only this host's line" })
				.example("$0 status", "every machine backing up into each set, MISSED where one stopped"),
		(args) =>
			withSession(args as Args, async (session) => {
				const { engine, clock } = session;
				const { dueRunOf } = await import("../due.js");
				const names = args.set ? [String(args.set)] : engine.setNames();
				const onlyHost = args.host === undefined ? undefined : parseNonEmpty(args.host, "--host");
				const now = clock.now();
				const rows = [];
				for (const name of names) {
					const open = await engine.open(name);
					const all = await open.repository.listSnapshots();
					const ofSet = all.filter((r) => r.snapshot.set === name);
					// Every host that has backed up into the set, and this machine even before its first backup.
					const hosts = [...new Set([engine.hostName(), ...ofSet.map((r) => r.snapshot.host)])]
						.filter((h) => onlyHost === undefined || h === onlyHost)
						.sort();
					let stored = 0;
					for (const pack of open.repository.index.packs.values()) stored += pack.size;
					for (const host of hosts) {
						const refs = ofSet.filter((r) => r.snapshot.host === host);
						const last = refs.at(-1);
						const due = await dueRunOf(session, open, host, all, now);
						// "Protected until" means what it means in `snapshots`: the newest snapshot's time plus its
						// retention. "Locked until" is the earliest lock among the objects it needs, as recorded.
						let lockedUntil: string | null = null;
						if (last) {
							const objects = await open.view.snapshotObjects(last);
							let earliest = Number.POSITIVE_INFINITY;
							for (const key of objects.keys) {
								const recorded = open.repository.index.lockUntil(key)?.getTime() ?? 0;
								// A snapshot object is written locked at least until its own protect-until.
								const known = key === last.key ? Math.max(recorded, new Date(last.snapshot.protectUntil).getTime()) : recorded;
								earliest = Math.min(earliest, known);
							}
							lockedUntil = Number.isFinite(earliest) ? new Date(earliest).toISOString() : null;
						}
						rows.push({
							set: name,
							host,
							lastBackup: last?.snapshot.time ?? null,
							nextRun: due?.at.toISOString() ?? null,
							nextRunReason: due?.reason ?? "no schedule",
							overdue: due?.overdue ?? false,
							// Older than the interval × (missedRuns + 1): more runs missed than the planner allows for.
							missed: last !== undefined && due !== undefined && due.missed > due.allowedMisses,
							protectedUntil: last?.snapshot.protectUntil ?? null,
							lockedUntil,
							snapshotsInWindow: refs.filter((r) => new Date(r.snapshot.protectUntil) > now).length,
							snapshots: refs.length,
							storedBytes: stored,
						});
					}
				}
				if (args.json) return printJson(rows);
				printTable(
					[
						"set",
						"host",
						"last backup",
						"next run",
						"protected until",
						"locked until",
						"in window",
						"stored",
						"why that next run",
					],
					rows.map((r) => [
						r.set,
						r.host,
						day(r.lastBackup ?? undefined),
						r.missed ? "MISSED" : r.overdue ? "now" : day(r.nextRun ?? undefined),
						day(r.protectedUntil ?? undefined),
						day(r.lockedUntil ?? undefined),
						`${r.snapshotsInWindow}/${r.snapshots}`,
						core().formatBytes(r.storedBytes),
						r.nextRunReason,
					]),
					{ alert: rows.map((r) => r.missed) },
				);
			}),
	);
}
