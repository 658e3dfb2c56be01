import type { UnreadableObject } from "@holdfast/core";
import type { Argv } from "yargs";
import { parseNonEmpty } from "../input.js";
import { day, printJson, printTable } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { unreadableSnapshots } from "../unreadable-snapshots.js";
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
				const seenHosts = new Set<string>();
				const unreadable: UnreadableObject[] = [];
				const failures: string[] = [];
				for (const name of names) {
					// One set that cannot be read (no repository yet, a store down) is said; the other sets are still shown.
					let protection: Awaited<ReturnType<typeof engine.setProtection>>;
					try {
						protection = await engine.setProtection(name, onlyHost);
					} catch (error) {
						if (names.length === 1) throw error;
						failures.push(`${name}: ${(error as Error).message}`);
						continue;
					}
					const { open, all, hosts, storedBytes } = protection;
					unreadable.push(...protection.unreadable);
					for (const ref of all) seenHosts.add(ref.snapshot.host);
					for (const { host, snapshots: refs, lockedUntil } of hosts) {
						const last = refs.at(-1);
						const due = await dueRunOf(session, open, host, all, now);
						rows.push({
							set: name,
							host,
							lastBackup: last?.snapshot.time ?? null,
							nextRun: due?.at.toISOString() ?? null,
							nextRunReason: due?.reason ?? "no schedule",
							overdue: due?.overdue ?? false,
							// Older than the interval × (missedRuns + 1): more runs missed than the planner allows for.
							missed: last !== undefined && due !== undefined && due.missed > due.allowedMisses,
							// "Protected until" means what it means in `snapshots`: the newest snapshot's time plus its
							// retention. "Locked until" is the earliest lock among the objects it needs, as recorded.
							protectedUntil: last?.snapshot.protectUntil ?? null,
							lockedUntil: lockedUntil?.toISOString() ?? null,
							snapshotsInWindow: refs.filter((r) => new Date(r.snapshot.protectUntil) > now).length,
							snapshots: refs.length,
							storedBytes,
						});
					}
				}
				// A host that never backed up is what monitoring asks `status --host` about: not an empty table and exit 0.
				if (onlyHost !== undefined && rows.length === 0 && unreadable.length === 0) {
					const known = [...seenHosts].sort();
					throw new (core().HoldfastError)(
						"NOT_FOUND",
						`no snapshots from host "${onlyHost}"${args.set ? ` in set ${String(args.set)}` : ""}; ${
							known.length > 0 ? `hosts here: ${known.join(", ")}` : "no host has backed up yet"
						}`,
					);
				}
				if (args.json) printJson(rows);
				else
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
				// A last backup among unreadable snapshots would show as "never" or older: the status fails instead.
				if (unreadable.length > 0) throw unreadableSnapshots(unreadable);
				if (failures.length > 0) throw new (core().HoldfastError)("DESTINATION", failures.join("\n"));
			}),
	);
}
