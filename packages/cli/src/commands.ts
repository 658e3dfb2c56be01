import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type * as Core from "@holdfast/core";
import type { Forecaster, PriceTable, Tree, TreeNode } from "@holdfast/core";
import type { Argv } from "yargs";
import { printDoctorReport, registerDoctorCommand } from "./commands/doctor.js";
import { printIndexRecovery, registerRepairCommands } from "./commands/repair.js";
import { EXIT } from "./exit-codes.js";
import { parseNonEmpty, parseNumberIn, parseOptionalIsoTime } from "./input.js";
import { day, printJson, printLine, printTable } from "./output.js";
import { progressWanted, startProgress } from "./progress.js";
import { printRestoreSkips } from "./restore-report.js";
import type { GlobalOptions, Session } from "./session.js";
import { describeTopLevel, toSnapshotPath, toSnapshotPattern } from "./snapshot-paths.js";
import { UsageError } from "./usage-error.js";
import { count } from "./words.js";

type Args = GlobalOptions & Record<string, unknown>;

/** The engine, loaded by the first command that needs it: `--help` and usage errors never pay for it. */
let core: typeof Core;

/** Opens a session, runs the body, and always closes it (plugins disposed, catalog flushed). */
async function withSession<T>(
	args: Args,
	body: (session: Session) => Promise<T>,
	options: { runningClock?: boolean } = {},
): Promise<T> {
	core = await import("@holdfast/core");
	const { openSession } = await import("./session.js");
	const session = await openSession(args, options);
	try {
		return await body(session);
	} finally {
		await session.close();
	}
}

const parseTime = parseOptionalIsoTime;

/** The set a command runs on, named for messages: the one given, or the config's only set. */
function setLabel(session: Session, set: unknown): string {
	if (set !== undefined) return String(set);
	const names = session.engine.setNames();
	return names.length === 1 ? (names[0] ?? "") : "";
}

/** Errors of a run name the set and, for the destination's, where it is (with the real cause). */
async function naming<T>(session: Session, set: unknown, body: () => Promise<T>): Promise<T> {
	try {
		return await body();
	} catch (error) {
		const { nameRunError } = await import("./run-errors.js");
		throw nameRunError(error, setLabel(session, set), session);
	}
}

async function printForecast(session: Session, args: Args): Promise<void> {
	const { engine, host, clock } = session;
	if (!host.container.isBound(core.TOKENS.Forecaster)) {
		throw new core.HoldfastError("USAGE", "--forecast needs @holdfast/plugin-retention-planner in plugins");
	}
	const forecaster = host.container.get<Forecaster>(core.TOKENS.Forecaster);
	const open = await engine.open(args.set as string | undefined);
	const start = parseTime(args.at, "--at") ?? clock.now();
	const latest = (await open.repository.listSnapshots()).filter((r) => r.snapshot.set === open.name).at(-1);
	let prices: PriceTable | undefined;
	if (args.prices) {
		try {
			prices = JSON.parse(await readFile(String(args.prices), "utf8")) as PriceTable;
		} catch (cause) {
			throw new core.HoldfastError("USAGE", `--prices ${String(args.prices)}: ${(cause as Error).message}`, { cause });
		}
	}
	const periodDays = core.parseDuration(parseNonEmpty(args.forecast, "--forecast"), "--forecast") / core.DAY_MS;
	if (!(periodDays > 0)) throw new UsageError(`--forecast: "${String(args.forecast)}" is not a period to forecast (like 365d)`);
	const changeRate = parseNumberIn(args.changeRate ?? 1, "--change-rate", 0, 100, " (percent a week)");
	const rewrite = parseNumberIn(args.rewrite ?? 0, "--rewrite", 0, 100, " (percent of the changes)");
	const report = forecaster.forecast({
		start,
		periodDays,
		weeklyChangeRate: changeRate / 100,
		rewriteShare: rewrite / 100,
		bytes: latest?.snapshot.summary.bytes ?? 0,
		packBytes: (open.set.packSizeMiB ?? 16) * 1024 * 1024,
		set: open.set,
		...(prices ? { prices } : {}),
	});
	if (args.json) return printJson(report);
	printLine(
		`forecast over ${count(periodDays, "day")}, ${count(report.assumptions.runs, "run")}, ${core.formatBytes(latest?.snapshot.summary.bytes ?? 0)} of data, ${changeRate} % changing a week${rewrite ? ` (${rewrite} % of it rewriting data changed lately)` : ""}`,
	);
	const priced = args.prices ? `--prices ${String(args.prices)}` : "the default table";
	const why =
		!args.prices && open.set.destination.type !== "b2"
			? ` (the destination, ${open.destination.description}, has no price of its own; pass --prices FILE for another)`
			: "";
	printLine(`prices: ${report.assumptions.prices.name}, from ${priced}${why}`);
	const tierRuns = report.assumptions.tierRuns;
	if (tierRuns) {
		const days = new Map((open.set.retention.tiers ?? []).map((t) => [t.every as string, t.days]));
		days.set("base", open.set.retention.days);
		const kept = Object.entries(tierRuns)
			.sort(([a], [b]) => (days.get(a) ?? 0) - (days.get(b) ?? 0))
			.map(([tier, n]) => `${n} kept ${days.get(tier)} d (${tier})`);
		printLine(`tiers: of the runs, ${kept.join(", ")}`);
	}
	const flat = report.flat;
	const rows = [
		...report.strategies.map((s) => ({ policy: flat ? "tiered" : undefined, s })),
		...(flat?.strategies ?? []).map((s) => ({ policy: `flat ${flat?.retentionDays} d`, s })),
	];
	printTable(
		[
			...(flat ? ["policy"] : []),
			"strategy",
			"uploaded",
			"peak stored",
			"PUTs",
			"lock calls",
			"list calls",
			"deletes",
			"cost USD",
		],
		rows.map(({ policy, s }) => [
			...(policy ? [policy] : []),
			s.strategy,
			core.formatBytes(s.uploadBytes),
			core.formatBytes(s.peakStoredBytes),
			String(s.putCalls),
			String(s.lockCalls),
			String(s.listCalls),
			String(s.deleteCalls),
			s.cost.total.toFixed(2),
		]),
	);
	for (const tiered of flat ? report.strategies : []) {
		const against = flat?.strategies.find((s) => s.strategy === tiered.strategy);
		if (!against || against.cost.total <= 0) continue;
		const saved = against.cost.total - tiered.cost.total;
		printLine(
			`${tiered.strategy}: the tiers ${saved >= 0 ? "save" : "cost"} ${Math.abs(saved).toFixed(2)} USD (${Math.round((Math.abs(saved) / against.cost.total) * 100)} %) against keeping every snapshot ${flat?.retentionDays} days`,
		);
	}
}

function printPlugins(
	args: Args,
	rows: { name: string; version: string; contributes: readonly string[]; loaded: boolean; skipped?: string }[],
): void {
	if (args.json) {
		printJson(rows);
		return;
	}
	printTable(
		["plugin", "version", "contributes", "state"],
		rows.map((r) => [r.name, r.version, r.contributes.join(", ") || "-", r.loaded ? "loaded" : `not loaded: ${r.skipped}`]),
	);
}

export function registerCommands(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	cli.command(
		"init [set]",
		"create the repository at the set's destination (checks the bucket first, then runs doctor)",
		(y) => y.positional("set", { type: "string" }).example("$0 init office", "create office's repository"),
		(args) =>
			withSession(args as Args, async (session) => {
				const { engine } = session;
				const result = await naming(session, args.set, () => engine.init(args.set as string | undefined));
				// An existing repository is only "fine" if this password opens it.
				if (!result.created) await engine.open(args.set as string | undefined);
				// What the key may do is told before the first backup, not after the first attack.
				const doctor = await engine.doctor(args.set as string | undefined);
				if (doctor.verdict === "fail") setExit(EXIT.failed);
				if (args.json) printJson({ ...result, doctor });
				else {
					for (const note of result.notes) printLine(`note: ${note}`);
					printLine(result.created ? "repository created" : "repository already exists; nothing changed");
					printLine();
					printDoctorReport(doctor);
				}
			}),
	);

	cli.command(
		"backup [set]",
		"back up a set now",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("dry-run", { type: "boolean", describe: "scan and plan, read and write nothing" })
				.option("strict-keys", { type: "boolean", describe: "refuse to run with a key that can delete or bypass governance" })
				.example("$0 backup office", "one backup run of the set office"),
		(args) =>
			withSession(args as Args, async (session) => {
				const { engine, host } = session;
				const showProgress = progressWanted(args);
				// The last snapshot's size is an estimate of the total; worth a look only when progress is shown.
				const last = showProgress ? (await engine.snapshots(args.set as string | undefined)).at(-1) : undefined;
				const progress = startProgress(args.dryRun ? "scan" : "backup", showProgress);
				if (last) progress.setTotal({ bytes: last.snapshot.summary.bytes, files: last.snapshot.summary.files });
				let files = 0;
				let bytes = 0;
				host.hooks.didScanEntry.tap("progress", ({ entry }) => {
					if (entry.type === "file") files++;
					bytes += entry.size;
					progress.update({ files, bytes });
				});
				let result: Awaited<ReturnType<typeof engine.backup>>;
				try {
					result = await naming(session, args.set, () =>
						engine.backup(args.set as string | undefined, {
							dryRun: Boolean(args.dryRun),
							strictKeys: Boolean(args.strictKeys),
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
				} else {
					if (result.snapshot)
						printLine(
							`snapshot ${result.snapshot.id.slice(0, 12)} saved, protected until ${day(result.snapshot.snapshot.protectUntil)}`,
						);
					else printLine("dry run: nothing written");
					printLine(
						`files: ${s.files.new} new, ${s.files.changed} changed, ${s.files.unchanged} unchanged, ${s.files.reincluded} re-included, ${s.files.skipped} skipped`,
					);
					printLine(
						`read ${core.formatBytes(s.bytes.read)}, uploaded ${core.formatBytes(s.bytes.uploaded)} in ${count(s.objects.uploaded, "object")}, ${count(s.objects.extended, "lock")} extended`,
					);
				}
				if (result.partial) setExit(EXIT.partial);
			}),
	);

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
			withSession(args as Args, async ({ engine }) => {
				const host = args.host === undefined ? undefined : parseNonEmpty(args.host, "--host");
				const refs = (await engine.snapshots(args.set as string | undefined)).filter(
					(r) => host === undefined || r.snapshot.host === host,
				);
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
				if (args.json) return printJson(rows);
				printTable(
					["ID", "time", "set", "host", "files", "size", "tier", "protected until", "paths"],
					rows.map((r) => [
						r.id.slice(0, 12),
						day(r.time),
						r.set,
						r.host,
						String(r.files),
						core.formatBytes(r.bytes),
						`${r.tier ?? "base"}, ${r.retentionDays} d`,
						day(r.protectUntil),
						r.paths.join(", "),
					]),
				);
			}),
	);

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
			withSession(args as Args, async ({ engine }) => {
				const { snapshot, tree } = await engine.list(String(args.snapshot), {
					...(args.set ? { setName: String(args.set) } : {}),
					...(args.host !== undefined ? { host: parseNonEmpty(args.host, "--host") } : {}),
				});
				const prefix = toSnapshotPath(String(args.path ?? ""), snapshot.snapshot.paths);
				const found: { path: string; node: TreeNode }[] = [];
				const walk = async (t: Tree, base: string) => {
					for (const node of t.nodes) {
						const path = base
							? `${base}/${core.decodeName(node.name).toString("utf8")}`
							: core.decodeName(node.name).toString("utf8");
						if (!prefix || path === prefix || path.startsWith(`${prefix}/`)) found.push({ path, node });
						if (node.subtree && (!prefix || prefix.startsWith(path) || path.startsWith(prefix)))
							await walk(await tree(node.subtree), path);
					}
				};
				const top = await tree(snapshot.snapshot.tree);
				await walk(top, "");
				if (prefix && found.length === 0) {
					const names = top.nodes.map((n) => core.decodeName(n.name).toString("utf8"));
					throw new core.HoldfastError(
						"NOT_FOUND",
						`nothing at "${prefix}" in snapshot ${snapshot.id.slice(0, 12)}; ${describeTopLevel(names)}`,
					);
				}
				if (args.json) {
					return printJson(
						found.map(({ path, node }) => ({
							path,
							type: node.type,
							size: node.size,
							mode: node.mode,
							mtime: new Date(Number(BigInt(node.mtime) / 1_000_000n)).toISOString(),
							...(node.target !== undefined ? { target: core.decodeName(node.target).toString("utf8") } : {}),
						})),
					);
				}
				const { longListing } = await import("./long-listing.js");
				for (const { path, node } of found) {
					if (args.long) printLine(longListing(path, node, core.decodeName));
					else
						printLine(
							`${node.type === "dir" ? "d" : node.type === "symlink" ? "l" : "-"} ${String(node.size).padStart(12)} ${path}`,
						);
				}
			}),
	);

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
			withSession(args as Args, async (session) => {
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
				const showProgress = progressWanted(args);
				const { measureRestore } = await import("./restore-scope.js");
				// What the restore will write, found from the trees alone: nothing matched fails before the target is touched.
				const listing = startProgress("restore: reading the file list", showProgress);
				let scope: Awaited<ReturnType<typeof measureRestore>>;
				try {
					scope =
						include || showProgress
							? await measureRestore(listed, include, core.decodeName, (entries) => listing.update({ items: entries }))
							: { files: listed.snapshot.snapshot.summary.files, bytes: listed.snapshot.snapshot.summary.bytes, entries: 1 };
				} finally {
					listing.stop();
				}
				if (include && scope.entries === 0) {
					throw new core.HoldfastError(
						"NOT_FOUND",
						`--include ${patterns.join(" ")}: matches nothing in snapshot ${listed.snapshot.id.slice(0, 12)}; ${describeTopLevel(scope.topLevel ?? [])}`,
					);
				}
				const progress = startProgress("restore", showProgress);
				progress.setTotal({ files: scope.files, bytes: scope.bytes });
				let files = 0;
				let bytes = 0;
				let result: Awaited<ReturnType<typeof engine.restore>>;
				try {
					result = await naming(session, args.set, () =>
						engine.restore(listed.snapshot.id, {
							target,
							...setOption,
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
				if (args.json) return printJson({ snapshot: snapshot.id, host: snapshot.snapshot.host, ...summary });
				printLine(
					`restored snapshot ${snapshot.id.slice(0, 12)} (${day(snapshot.snapshot.time)}): ${count(summary.files, "file")}, ${count(summary.dirs, "folder")}, ${count(summary.symlinks, "link")}, ${core.formatBytes(summary.bytes)}`,
				);
				printRestoreSkips(summary, Boolean(args.skipExisting));
			}),
	);

	cli.command(
		"plan [set]",
		"what the next run would upload, re-include and extend",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("at", { type: "string", describe: "plan a run at this ISO time" })
				.option("forecast", {
					type: "string",
					describe: "simulate the schedule for this long (e.g. 365d) and price each strategy",
				})
				.option("change-rate", {
					type: "string",
					default: 1,
					describe: "with --forecast: percent of the data changing each week",
				})
				.option("rewrite", {
					type: "string",
					default: 0,
					describe:
						"with --forecast: percent of those changes that rewrite data changed lately (databases, mailboxes, logs) rather than old files",
				})
				.option("prices", { type: "string", describe: "with --forecast: a JSON price table (default: B2's list prices)" })
				.example("$0 plan office --at 2027-03-01T02:00:00Z", "the run of March 1st")
				.example("$0 plan office --forecast 365d --change-rate 2", "a year of runs, priced"),
		(args) =>
			withSession(args as Args, async (session) => {
				const { engine, clock } = session;
				if (args.forecast) return printForecast(session, args);
				const at = parseTime(args.at, "--at") ?? clock.now();
				const result = await engine.backup(args.set as string | undefined, { dryRun: true, at });
				const { plan, summary } = result;
				const report = {
					at: at.toISOString(),
					strategy: plan.strategy,
					nextRun: plan.nextRun?.toISOString() ?? null,
					horizon: plan.horizon.toISOString(),
					protectUntil: plan.protectUntil.toISOString(),
					tier: plan.tier ?? null,
					lockUntil: plan.lock.until.toISOString(),
					upload: { files: summary.files.new + summary.files.changed + summary.files.reincluded, bytes: summary.bytes.read },
					files: summary.files,
					reinclude: plan.notes,
					renew: { blobs: summary.objects.renewedBlobs, bytes: summary.bytes.renewed },
					warnings: plan.warnings,
					extend: result.extensions.map((e) => ({
						key: e.key,
						from: e.from?.toISOString() ?? null,
						to: e.to.toISOString(),
						reason: e.reason,
					})),
					calls: {
						put: summary.files.new + summary.files.changed + summary.files.reincluded > 0 ? "≥1" : 0,
						extend: result.extensions.length,
					},
				};
				if (args.json) return printJson(report);
				printLine(`plan for a run at ${day(report.at)} (strategy ${report.strategy})`);
				for (const warning of plan.warnings) printLine(`warning: ${warning}`);
				printLine(
					`next run: ${day(report.nextRun ?? undefined)}; it will have renewed protection by ${day(report.horizon)}, so every copy must stay locked until then`,
				);
				printLine(
					`upload: ${count(report.upload.files, "file")}, up to ${core.formatBytes(report.upload.bytes)} (${summary.files.reincluded} re-included)`,
				);
				for (const note of plan.notes.slice(0, 20)) printLine(`  re-include ${note}`);
				if (report.renew.blobs > 0)
					printLine(
						`renew: ${count(report.renew.blobs, "blob")} (${core.formatBytes(report.renew.bytes)}) older snapshots need, copied into new packs before their locks end`,
					);
				printLine(`extend: ${count(report.extend.length, "object")}`);
				for (const e of report.extend.slice(0, 20)) printLine(`  ${e.key}: ${day(e.from ?? undefined)} -> ${day(e.to)}`);
				printLine(
					`the snapshot: protected until ${day(report.protectUntil)}${report.tier ? ` (the first of its ${report.tier})` : ""}; new objects locked until ${day(report.lockUntil)}`,
				);
			}),
	);

	cli.command(
		"groom [set]",
		"forget snapshots past their window and delete what nothing needs and no lock holds",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("dry-run", { type: "boolean", describe: "list what would be deleted, delete nothing" })
				.example("$0 groom office --dry-run", "what grooming would delete"),
		(args) =>
			withSession(args as Args, async (session) => {
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
				printLine(`${result.dryRun ? "would forget" : "forgot"} ${count(result.forgotten.length, "snapshot")}`);
				printLine(
					`${result.dryRun ? "would delete" : "deleted"} ${count(result.deleted.objects, "object")} (${core.formatBytes(result.deleted.bytes)})`,
				);
				printLine(
					`${result.dryRun ? "would mark" : "marked"} ${count(result.marked.objects, "object")} (${core.formatBytes(result.marked.bytes)}) no snapshot needs, for deletion by a groom ${result.graceHours} h or more from now`,
				);
				printLine(`held by locks: ${count(result.heldByLock.objects, "object")} (${core.formatBytes(result.heldByLock.bytes)})`);
				if (args.dryRun) {
					for (const key of result.deleted.keys) printLine(`  delete ${key}`);
					for (const key of result.marked.keys) printLine(`  mark ${key}`);
				}
			}),
	);

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
			withSession(args as Args, async ({ engine }) => {
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
							`data: read and verified ${report.packsRead} of ${count(packs.size, "pack")} (${percent} % asked for) out of ${core.formatBytes(stored)} stored`,
						);
					}
					if (report.reclaimable.objects > 0)
						printLine(
							`reclaimable: ${count(report.reclaimable.objects, "object")} (${core.formatBytes(report.reclaimable.bytes)}) no snapshot needs; grooming deletes them once their grace and locks end`,
						);
					const i = report.immutability;
					printLine(
						`immutability: ${i.covered} of ${count(i.snapshots, "snapshot")} in their window fully locked (${i.lockedObjects} of ${count(i.objects, "object check")})`,
					);
					for (const gap of i.gaps.slice(0, 20))
						printLine(
							`  gap: ${gap.key} locked until ${day(gap.lockedUntil ?? undefined)}, needed until ${day(gap.needed)} (snapshot ${gap.snapshot.slice(0, 12)})`,
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
			}),
	);

	registerRepairCommands(cli, { withSession, setExit });
	registerDoctorCommand(cli, { withSession, setExit });

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
				const { dueRunOf } = await import("./due.js");
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
						core.formatBytes(r.storedBytes),
						r.nextRunReason,
					]),
					{ alert: rows.map((r) => r.missed) },
				);
			}),
	);

	cli.command(
		"daemon",
		"run every set on its schedule until stopped (SIGTERM finishes or abandons the current run safely)",
		(y) =>
			y
				.option("strict-keys", { type: "boolean", describe: "refuse each run whose key can delete or bypass governance" })
				.example("$0 daemon --config /etc/holdfast.yaml", "as a systemd service"),
		(args) =>
			withSession(
				args as Args,
				async (session) => {
					const { runDaemon } = await import("./daemon.js");
					return runDaemon(session, args as Args);
				},
				{ runningClock: true },
			),
	);

	cli.command(
		"plugins",
		"the plugins the config loads, their versions and contributions (without a config: the bundled ones)",
		(y) => y.example("$0 plugins", "what is loaded, or what could be"),
		async (args) => {
			const { noConfigAnywhere } = await import("./config-presence.js");
			if (noConfigAnywhere(args as Args)) {
				const { bundledPluginRows } = await import("./bundled-plugins.js");
				return printPlugins(args as Args, await bundledPluginRows());
			}
			return withSession(args as Args, async ({ host }) => {
				const rows = host.plugins.map((p) => ({
					spec: p.manifest.spec,
					name: p.definition?.name ?? p.manifest.packageName ?? p.manifest.spec,
					version: p.definition?.version ?? p.manifest.version ?? "?",
					contributes: p.manifest.contributes,
					loaded: !p.skipped,
					...(p.skipped ? { skipped: p.skipped } : {}),
				}));
				printPlugins(args as Args, rows);
			});
		},
	);

	cli.command("config <action>", "print the JSON Schema of the config, or check a config file", (y) =>
		y
			.command(
				"schema",
				"print the JSON Schema (with the schemas of the configured plugins when a config is found)",
				(z) => z,
				async (args) => {
					try {
						await withSession(args as Args, async ({ host }) => {
							printJson(core.fullConfigSchema(host.schemas()));
						});
					} catch {
						const { bundledSetKeys } = await import("./bundled-schema.js");
						const setKeys = await bundledSetKeys();
						printJson(core.fullConfigSchema({ sources: new Map(), destinations: new Map(), setKeys }));
					}
				},
			)
			.command(
				"check",
				"validate the config file and the options of every plugin",
				(z) => z,
				(args) =>
					withSession(args as Args, async (session) => {
						const { missingSourceRoots } = await import("./source-roots.js");
						const warnings = await missingSourceRoots(session);
						// What a set's schedule cannot promise, said before the first run rather than after.
						if (session.host.container.isBound(core.TOKENS.ScheduleAdvisor)) {
							const advisor = session.host.container.get<Core.ScheduleAdvisor>(core.TOKENS.ScheduleAdvisor);
							for (const name of session.engine.setNames()) {
								const { set } = session.engine.resolveSet(name);
								const cap = session.engine.destinationFor(name, set).capabilities.maxRetentionDays;
								for (const line of advisor.warnings(set, cap, session.clock.now())) warnings.push(`set ${name}: ${line}`);
							}
						}
						for (const warning of warnings) process.stderr.write(`holdfast: warning: ${warning}\n`);
						if (args.json) printJson({ ok: true, file: session.loaded.file, warnings });
						else printLine(`${session.loaded.file}: ok${warnings.length > 0 ? `, ${count(warnings.length, "warning")}` : ""}`);
					}),
			)
			.demandCommand(1),
	);
}
