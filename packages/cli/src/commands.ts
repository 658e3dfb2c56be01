import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
	B2_PRICES,
	collectSnapshotObjects,
	configSchema,
	DAY_MS,
	decodeName,
	type Forecaster,
	formatBytes,
	fullConfigSchema,
	HoldfastError,
	loadConfigFile,
	metadataFor,
	type PriceTable,
	parseDuration,
	TOKENS,
	type Tree,
	type TreeNode,
} from "@holdfast/core";
import ignore from "ignore";
import type { Argv } from "yargs";
import { printIndexRecovery, registerRepairCommands } from "./commands/repair.js";
import { runDaemon } from "./daemon.js";
import { EXIT } from "./exit-codes.js";
import { day, printJson, printLine, printTable } from "./output.js";
import { startProgress } from "./progress.js";
import { printRestoreSkips } from "./restore-report.js";
import { configPath, type GlobalOptions, openSession, type Session } from "./session.js";

type Args = GlobalOptions & Record<string, unknown>;

/** Opens a session, runs the body, and always closes it (plugins disposed, catalog flushed). */
async function withSession<T>(args: Args, body: (session: Session) => Promise<T>): Promise<T> {
	const session = await openSession(args);
	try {
		return await body(session);
	} finally {
		await session.close();
	}
}

function parseTime(value: unknown, flag: string): Date | undefined {
	if (value === undefined) return undefined;
	const date = new Date(String(value));
	if (Number.isNaN(date.getTime())) throw new HoldfastError("USAGE", `${flag}: "${String(value)}" is not an ISO time`);
	return date;
}

async function printForecast(session: Session, args: Args): Promise<void> {
	const { engine, host, clock } = session;
	if (!host.container.isBound(TOKENS.Forecaster)) {
		throw new HoldfastError("USAGE", "--forecast needs @holdfast/plugin-retention-planner in plugins");
	}
	const forecaster = host.container.get<Forecaster>(TOKENS.Forecaster);
	const open = await engine.open(args.set as string | undefined);
	const start = parseTime(args.at, "--at") ?? clock.now();
	const latest = (await open.repository.listSnapshots()).filter((r) => r.snapshot.set === open.name).at(-1);
	let prices = B2_PRICES;
	if (args.prices) {
		try {
			prices = JSON.parse(await readFile(String(args.prices), "utf8")) as PriceTable;
		} catch (cause) {
			throw new HoldfastError("USAGE", `--prices ${String(args.prices)}: ${(cause as Error).message}`, { cause });
		}
	}
	const periodDays = parseDuration(String(args.forecast), "--forecast") / DAY_MS;
	const context = engine.context("plan", open);
	const plan = await engine.plan({ ...context, startedAt: start }, open.destination);
	const interval = plan.nextRun ? plan.nextRun.getTime() - start.getTime() : 7 * DAY_MS;
	const runs: Date[] = [];
	for (let t = start.getTime(); t < start.getTime() + periodDays * DAY_MS && runs.length < 100_000; t += interval)
		runs.push(new Date(t));
	const planner = { slackDays: 14, missedRuns: 0, ...(open.set.planner ?? {}) };
	const report = forecaster.forecast({
		start,
		periodDays,
		weeklyChangeRate: Number(args.changeRate ?? 1) / 100,
		bytes: latest?.snapshot.summary.bytes ?? 0,
		packBytes: (open.set.packSizeMiB ?? 16) * 1024 * 1024,
		retentionDays: open.set.retention.days,
		slackDays: planner.slackDays,
		missedRuns: planner.missedRuns,
		runs,
		prices,
	});
	if (args.json) return printJson(report);
	printLine(
		`forecast over ${periodDays} days, ${runs.length} runs, ${formatBytes(latest?.snapshot.summary.bytes ?? 0)} of data, ${args.changeRate ?? 1} % changing a week (${prices.name})`,
	);
	printTable(
		["strategy", "uploaded", "peak stored", "PUTs", "lock calls", "list calls", "deletes", "cost USD"],
		report.strategies.map((s) => [
			s.strategy,
			formatBytes(s.uploadBytes),
			formatBytes(s.peakStoredBytes),
			String(s.putCalls),
			String(s.lockCalls),
			String(s.listCalls),
			String(s.deleteCalls),
			s.cost.total.toFixed(2),
		]),
	);
}

export function registerCommands(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	cli.command(
		"init [set]",
		"create the repository at the set's destination (checks the bucket first)",
		(y) => y.positional("set", { type: "string" }).example("$0 init office", "create office's repository"),
		(args) =>
			withSession(args as Args, async ({ engine }) => {
				const result = await engine.init(args.set as string | undefined);
				if (args.json) printJson(result);
				else {
					for (const note of result.notes) printLine(`note: ${note}`);
					printLine(result.created ? "repository created" : "repository already exists; nothing changed");
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
				.example("$0 backup office", "one backup run of the set office"),
		(args) =>
			withSession(args as Args, async ({ engine, host }) => {
				const showProgress = Boolean(args.progress) && !args.json && !args.quiet && process.stderr.isTTY;
				// The last snapshot's size is the bar's total; worth a look only when a bar is shown.
				const expected = showProgress
					? ((await engine.snapshots(args.set as string | undefined)).at(-1)?.snapshot.summary.bytes ?? 0)
					: 0;
				const progress = startProgress("backup", expected, showProgress, "bytes");
				let seen = 0;
				host.hooks.didScanEntry.tap("cli-progress", ({ entry }) => {
					seen += entry.size;
					progress.update(seen, Math.max(seen, expected));
				});
				const result = await engine.backup(args.set as string | undefined, { dryRun: Boolean(args.dryRun) });
				progress.stop();
				const s = result.summary;
				if (args.json) {
					printJson({
						snapshot: result.snapshot
							? {
									id: result.snapshot.id,
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
						`read ${formatBytes(s.bytes.read)}, uploaded ${formatBytes(s.bytes.uploaded)} in ${s.objects.uploaded} objects, ${s.objects.extended} locks extended`,
					);
				}
				if (result.partial) setExit(EXIT.partial);
			}),
	);

	cli.command(
		"snapshots [set]",
		"list snapshots",
		(y) => y.positional("set", { type: "string" }).example("$0 snapshots --json", "all snapshots as JSON"),
		(args) =>
			withSession(args as Args, async ({ engine }) => {
				const refs = await engine.snapshots(args.set as string | undefined);
				const rows = refs.map((r) => ({
					id: r.id,
					set: r.snapshot.set,
					host: r.snapshot.host,
					time: r.snapshot.time,
					paths: r.snapshot.paths,
					files: r.snapshot.summary.files,
					bytes: r.snapshot.summary.bytes,
					protectUntil: r.snapshot.protectUntil,
				}));
				if (args.json) return printJson(rows);
				printTable(
					["ID", "time", "set", "host", "files", "size", "protected until", "paths"],
					rows.map((r) => [
						r.id.slice(0, 12),
						day(r.time),
						r.set,
						r.host,
						String(r.files),
						formatBytes(r.bytes),
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
				.positional("path", { type: "string" })
				.option("set", { type: "string" })
				.example("$0 ls latest share/docs", "what is under share/docs"),
		(args) =>
			withSession(args as Args, async ({ engine }) => {
				const { snapshot, tree } = await engine.list(String(args.snapshot), args.set ? { setName: String(args.set) } : {});
				const prefix = String(args.path ?? "").replace(/^\/+|\/+$/g, "");
				const found: { path: string; node: TreeNode }[] = [];
				const walk = async (t: Tree, base: string) => {
					for (const node of t.nodes) {
						const path = base ? `${base}/${decodeName(node.name).toString("utf8")}` : decodeName(node.name).toString("utf8");
						if (!prefix || path === prefix || path.startsWith(`${prefix}/`)) found.push({ path, node });
						if (node.subtree && (!prefix || prefix.startsWith(path) || path.startsWith(prefix)))
							await walk(await tree(node.subtree), path);
					}
				};
				await walk(await tree(snapshot.snapshot.tree), "");
				if (args.json) {
					return printJson(
						found.map(({ path, node }) => ({
							path,
							type: node.type,
							size: node.size,
							mode: node.mode,
							mtime: new Date(Number(BigInt(node.mtime) / 1_000_000n)).toISOString(),
						})),
					);
				}
				for (const { path, node } of found)
					printLine(
						`${node.type === "dir" ? "d" : node.type === "symlink" ? "l" : "-"} ${String(node.size).padStart(12)} ${path}`,
					);
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
				.example("$0 restore latest --target /tmp/r --include 'share/docs/**'", "one folder of the newest snapshot"),
		(args) =>
			withSession(args as Args, async ({ engine }) => {
				const patterns = (args.include as string[] | undefined) ?? [];
				const matcher = patterns.length > 0 ? ignore().add(patterns) : undefined;
				const at = parseTime(args.at, "--at");
				const { snapshot, summary } = await engine.restore(String(args.snapshot), {
					target: resolve(String(args.target)),
					...(args.set ? { setName: String(args.set) } : {}),
					...(at ? { at } : {}),
					...(matcher ? { include: (path: string) => matcher.ignores(path) } : {}),
					...(args.overwrite ? { overwrite: true } : {}),
					...(args.skipExisting ? { skipExisting: true } : {}),
				});
				if (summary.partial) setExit(EXIT.partial);
				if (args.json) return printJson({ snapshot: snapshot.id, ...summary });
				printLine(
					`restored snapshot ${snapshot.id.slice(0, 12)} (${day(snapshot.snapshot.time)}): ${summary.files} files, ${summary.dirs} folders, ${summary.symlinks} links, ${formatBytes(summary.bytes)}`,
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
					type: "number",
					default: 1,
					describe: "with --forecast: percent of the data changing each week",
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
					`upload: ${report.upload.files} files, up to ${formatBytes(report.upload.bytes)} (${summary.files.reincluded} re-included)`,
				);
				for (const note of plan.notes.slice(0, 20)) printLine(`  re-include ${note}`);
				if (report.renew.blobs > 0)
					printLine(
						`renew: ${report.renew.blobs} blobs (${formatBytes(report.renew.bytes)}) older snapshots need, copied into new packs before their locks end`,
					);
				printLine(`extend: ${report.extend.length} objects`);
				for (const e of report.extend.slice(0, 20)) printLine(`  ${e.key}: ${day(e.from ?? undefined)} -> ${day(e.to)}`);
				printLine(`new objects locked until ${day(report.lockUntil)}`);
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
			withSession(args as Args, async ({ engine }) => {
				const result = await engine.groom(args.set as string | undefined, { dryRun: Boolean(args.dryRun) });
				if (args.json) {
					return printJson({
						forgotten: result.forgotten,
						deleted: result.deleted,
						heldByLock: result.heldByLock,
						held: result.held.map((h) => ({ ...h, until: h.until?.toISOString() })),
						deadBytesInLivePacks: result.deadBytesInLivePacks,
						dryRun: result.dryRun,
					});
				}
				printLine(`${result.dryRun ? "would forget" : "forgot"} ${result.forgotten.length} snapshots`);
				printLine(
					`${result.dryRun ? "would delete" : "deleted"} ${result.deleted.objects} objects (${formatBytes(result.deleted.bytes)})`,
				);
				printLine(`held by locks: ${result.heldByLock.objects} objects (${formatBytes(result.heldByLock.bytes)})`);
				if (args.dryRun) for (const key of result.deleted.keys) printLine(`  delete ${key}`);
			}),
	);

	cli.command(
		"check [set]",
		"verify structure, optionally data, and audit that every snapshot in its window is locked",
		(y) =>
			y
				.positional("set", { type: "string" })
				.option("read-data", { type: "boolean", describe: "download and verify every pack" })
				.option("read-data-subset", { type: "number", describe: "download and verify this percentage of packs" })
				.example("$0 check --read-data-subset 10", "verify a tenth of the data"),
		(args) =>
			withSession(args as Args, async ({ engine }) => {
				const percent = args.readData ? 100 : Number(args.readDataSubset ?? 0);
				if (!(percent >= 0 && percent <= 100)) throw new HoldfastError("USAGE", "--read-data-subset: a percentage from 0 to 100");
				const progress = startProgress("check", 1, Boolean(args.progress) && !args.json && percent > 0, "items");
				const report = await engine.check(args.set as string | undefined, {
					readDataPercent: percent,
					onProgress: (d, t) => progress.update(d, t),
				});
				progress.stop();
				if (args.json) printJson(report);
				else {
					for (const error of report.errors) printLine(`error: ${error}`);
					printIndexRecovery(report);
					const i = report.immutability;
					printLine(
						`immutability: ${i.covered}/${i.snapshots} snapshots in their window fully locked (${i.lockedObjects}/${i.objects} object checks)`,
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

	cli.command(
		"status [set]",
		"per set: last backup, next run, protection horizon, snapshots in window, stored bytes",
		(y) => y.positional("set", { type: "string" }),
		(args) =>
			withSession(args as Args, async ({ engine, clock }) => {
				const names = args.set ? [String(args.set)] : engine.setNames();
				const now = clock.now();
				const rows = [];
				for (const name of names) {
					const open = await engine.open(name);
					const refs = (await open.repository.listSnapshots()).filter((r) => r.snapshot.set === name);
					const last = refs.at(-1);
					const plan = await engine.plan(engine.context("plan", open), open.destination);
					let stored = 0;
					for (const pack of open.repository.index.packs.values()) stored += pack.size;
					let horizon: string | null = null;
					if (last) {
						const objects = await collectSnapshotObjects(open.repository, last, metadataFor(open.repository));
						let earliest = Number.POSITIVE_INFINITY;
						for (const key of objects.packs) earliest = Math.min(earliest, open.repository.index.lockUntil(key)?.getTime() ?? 0);
						horizon = Number.isFinite(earliest) ? new Date(earliest).toISOString() : null;
					}
					rows.push({
						set: name,
						lastBackup: last?.snapshot.time ?? null,
						nextRun: plan.nextRun?.toISOString() ?? null,
						protectionHorizon: horizon,
						snapshotsInWindow: refs.filter((r) => new Date(r.snapshot.protectUntil) > now).length,
						snapshots: refs.length,
						storedBytes: stored,
					});
				}
				if (args.json) return printJson(rows);
				printTable(
					["set", "last backup", "next run", "protected until", "in window", "stored"],
					rows.map((r) => [
						r.set,
						day(r.lastBackup ?? undefined),
						day(r.nextRun ?? undefined),
						day(r.protectionHorizon ?? undefined),
						`${r.snapshotsInWindow}/${r.snapshots}`,
						formatBytes(r.storedBytes),
					]),
				);
			}),
	);

	cli.command(
		"daemon",
		"run every set on its schedule until stopped (SIGTERM finishes or abandons the current run safely)",
		(y) => y.example("$0 daemon --config /etc/holdfast.yaml", "as a systemd service"),
		(args) => withSession(args as Args, (session) => runDaemon(session, args as Args)),
	);

	cli.command(
		"plugins",
		"the plugins the config loads, their versions and contributions",
		(y) => y,
		(args) =>
			withSession(args as Args, async ({ host }) => {
				const rows = host.plugins.map((p) => ({
					spec: p.manifest.spec,
					name: p.definition?.name ?? p.manifest.packageName ?? p.manifest.spec,
					version: p.definition?.version ?? p.manifest.version ?? "?",
					contributes: p.manifest.contributes,
					loaded: !p.skipped,
					...(p.skipped ? { skipped: p.skipped } : {}),
				}));
				if (args.json) return printJson(rows);
				printTable(
					["plugin", "version", "contributes", "state"],
					rows.map((r) => [r.name, r.version, r.contributes.join(", ") || "-", r.loaded ? "loaded" : `not loaded: ${r.skipped}`]),
				);
			}),
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
							const { sources, destinations } = host.schemas();
							printJson(fullConfigSchema(sources, destinations));
						});
					} catch {
						printJson(configSchema);
					}
				},
			)
			.command(
				"check",
				"validate the config file and the options of every plugin",
				(z) => z,
				(args) =>
					withSession(args as Args, async () => {
						const loaded = await loadConfigFile(configPath(args as Args));
						if (args.json) printJson({ ok: true, file: loaded.file });
						else printLine(`${loaded.file}: ok`);
					}),
			)
			.demandCommand(1),
	);
}
