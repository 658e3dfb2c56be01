import type { Argv } from "yargs";
import { EXIT } from "../exit-codes.js";
import { parseNonEmpty } from "../input.js";
import { printJson, printLine } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { describeTopLevel, toSnapshotPath } from "../snapshot-paths.js";
import { type Args, core, withSession } from "./run-session.js";

/** `holdfast ls`: what a snapshot holds under a path. */
export function registerLsCommand(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	cli.command(
		"ls <snapshot> [path]",
		"list the files of a snapshot",
		(y) =>
			y
				.positional("snapshot", { type: "string", demandOption: true })
				.positional("path", {
					type: "string",
					describe: "a path in the snapshot (share/docs) or on the source (/srv/share/docs)",
				})
				.option("set", { type: "string" })
				.option("host", { type: "string", describe: "latest picks among this host's snapshots" })
				.option("long", { type: "boolean", alias: "l", describe: "mode, size, modification time (UTC) and link target" })
				.example("$0 ls latest share/docs", "what is under share/docs")
				.example("$0 ls -l latest /srv/share/docs", "the same, by its path on the source, in detail"),
		(args) =>
			withSession(
				args as Args,
				async (session) => {
					const { engine } = session;
					const selection = {
						...(args.set ? { setName: String(args.set) } : {}),
						...(args.host !== undefined ? { host: parseNonEmpty(args.host, "--host") } : {}),
					};
					const listed = await engine.list(String(args.snapshot), selection);
					const { snapshot } = listed;
					const prefix = toSnapshotPath(String(args.path ?? ""), snapshot.snapshot.paths);
					const { entries: found, topLevel, lost } = await engine.entries(listed, prefix);
					const within = prefix && found.length === 0 ? lost.find((folder) => prefix.startsWith(`${folder.path}/`)) : undefined;
					if (within) {
						throw new (core().HoldfastError)(
							"CORRUPT",
							`"${prefix}" cannot be listed: it lies in ${within.path}/, whose contents cannot be read: ${within.reason}`,
						);
					}
					// A damaged folder is named and the rest listed; the command still fails for it.
					for (const folder of lost) session.logger.warn(`${folder.path}/: folder's contents cannot be listed: ${folder.reason}`);
					if (lost.length > 0) setExit(EXIT.failed);
					if (prefix && found.length === 0) {
						throw new (core().HoldfastError)(
							"NOT_FOUND",
							`nothing at "${prefix}" in snapshot ${snapshot.id.slice(0, 12)}; ${describeTopLevel(topLevel)}`,
						);
					}
					if (args.json) {
						// A folder whose inside cannot be read says so on its own entry, for a script as for a reader.
						const unreadable = new Map(lost.map((folder) => [folder.path, folder.reason]));
						return printJson(
							found.map(({ path, node }) => ({
								path,
								type: node.type,
								size: node.size,
								mode: node.mode,
								mtime: new Date(Number(BigInt(node.mtime) / 1_000_000n)).toISOString(),
								...(node.target !== undefined ? { target: core().decodeName(node.target).toString("utf8") } : {}),
								...(unreadable.has(path) ? { unreadable: unreadable.get(path) } : {}),
							})),
						);
					}
					const { longListing, TYPE_LETTER } = await import("../long-listing.js");
					for (const { path, node } of found) {
						if (args.long) printLine(longListing(path, node, core().decodeName));
						else printLine(`${TYPE_LETTER[node.type] ?? "?"} ${String(node.size).padStart(12)} ${path}`);
					}
				},
				{ unlocksSet: true },
			),
	);
}
