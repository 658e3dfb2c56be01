import type { SnapshotRef } from "@holdfast/core";
import type { Argv } from "yargs";
import { parseNonEmpty } from "../input.js";
import { day, printJson, printLine, printTable } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { unreadableSnapshots } from "../unreadable-snapshots.js";
import { type Args, core, withSession } from "./run-session.js";

/** `holdfast snapshots`: the snapshots of the repository, by set and host. */
export function registerSnapshotsCommand(cli: Argv<GlobalOptions>, _setExit: (code: number) => void): void {
	cli.command(
		"snapshots [set]",
		"list snapshots",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("host", { type: "string", describe: "only snapshots this host took" })
				.example("$0 snapshots --json", "all snapshots as JSON")
				.example("$0 snapshots --host laptop-07", "what one machine of the fleet has stored"),
		(args) =>
			withSession(
				args as Args,
				async ({ engine }) => {
					const host = args.host === undefined ? undefined : parseNonEmpty(args.host, "--host");
					const set = args.set as string | undefined;
					const { refs: all, unreadable } = await engine.snapshotListing(set);
					const refs = all.filter((r) => host === undefined || r.snapshot.host === host);
					const rows = refs.map((r) => ({
						id: r.id,
						set: r.snapshot.set,
						host: r.snapshot.host,
						time: r.snapshot.time,
						paths: r.snapshot.paths,
						files: r.snapshot.summary.files,
						bytes: r.snapshot.summary.bytes,
						tier: r.snapshot.retention.tier ?? null,
						retentionDays: r.snapshot.retention.days,
						protectUntil: r.snapshot.protectUntil,
					}));
					if (args.json) printJson(rows);
					else if (rows.length === 0 && unreadable.length === 0) printLine(nothingListed(set, host, all));
					else if (rows.length > 0)
						printTable(
							["ID", "time", "set", "host", "files", "size", "tier", "protected until", "paths"],
							rows.map((r) => [
								r.id.slice(0, 12),
								day(r.time),
								r.set,
								r.host,
								String(r.files),
								core().formatBytes(r.bytes),
								`${r.tier ?? "base"}, ${r.retentionDays} d`,
								day(r.protectUntil),
								r.paths.join(", "),
							]),
						);
					// Unreadable is not absent: the listing above is short, and says so by failing.
					if (unreadable.length > 0) throw unreadableSnapshots(unreadable);
				},
				{ unlocksSet: true },
			),
	);
}

/**
 * An empty listing says what it looked for and what there is, so a misspelt name does not read
 * as lost backups. `all` is everything in the set's repository (a bucket may hold many sets).
 */
function nothingListed(set: string | undefined, host: string | undefined, all: SnapshotRef[]): string {
	const wanted = [set !== undefined ? `of set "${set}"` : "", host !== undefined ? `from host "${host}"` : ""]
		.filter(Boolean)
		.join(" ");
	if (all.length === 0) {
		return wanted
			? `no snapshots ${wanted}; its repository has none yet: \`holdfast backup${set !== undefined ? ` ${set}` : ""}\` takes the first`
			: "no snapshots yet: `holdfast backup` takes the first";
	}
	const names = (pick: (r: SnapshotRef) => string) => [...new Set(all.map(pick))].sort().join(", ");
	return `no snapshots ${wanted}; snapshots here are of ${plural(
		"set",
		names((r) => r.snapshot.set),
	)} from ${plural(
		"host",
		names((r) => r.snapshot.host),
	)}`;
}

function plural(word: string, list: string): string {
	return `${word}${list.includes(", ") ? "s" : ""} ${list}`;
}
