import { readFile } from "node:fs/promises";
import type { Forecaster, PriceTable } from "@holdfast/core";
import type { Argv } from "yargs";
import { parseNonEmpty, parseNumberIn } from "../input.js";
import { day, printJson, printLine, printTable } from "../output.js";
import type { GlobalOptions, Session } from "../session.js";
import { UsageError } from "../usage-error.js";
import { count } from "../words.js";
import { type Args, core, parseTime, withSession } from "./run-session.js";

/** `holdfast plan`: what the next run will lock and renew, or a priced forecast of a period. */
export function registerPlanCommand(cli: Argv<GlobalOptions>, _setExit: (code: number) => void): void {
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
					describe: "with --forecast: percent of the data changing each week (default 1)",
				})
				.option("rewrite", {
					type: "string",
					describe:
						"with --forecast: percent of those changes that rewrite data changed lately (databases, mailboxes, logs) rather than old files (default 0)",
				})
				.option("prices", { type: "string", describe: "with --forecast: a JSON price table (default: B2's list prices)" })
				.example("$0 plan office --at 2027-03-01T02:00:00Z", "the run of March 1st")
				.example("$0 plan office --forecast 365d --change-rate 2", "a year of runs, priced"),
		(args) =>
			withSession(args as Args, async (session) => {
				const { engine, clock } = session;
				if (args.forecast) return printForecast(session, args);
				// Forecast options alone would be ignored: the user asked for a forecast and would get a plan.
				const alone = (["change-rate", "rewrite", "prices"] as const).find((flag) => args[flag] !== undefined);
				if (alone) throw new UsageError(`--${alone} works with --forecast only (like --forecast 365d --${alone} …)`);
				const at = parseTime(args.at, "--at") ?? clock.now();
				// A dry backup: the files are read and chunked, so what it would upload is counted, not guessed.
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
					upload: {
						files: summary.files.new + summary.files.changed + summary.files.reincluded,
						read: summary.bytes.read,
						bytes: summary.bytes.uploaded,
						objects: summary.objects.uploaded,
					},
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
					calls: { put: summary.objects.uploaded, extend: result.extensions.length },
				};
				if (args.json) return printJson(report);
				printLine(`plan for a run at ${day(report.at)} (strategy ${report.strategy})`);
				for (const warning of plan.warnings) printLine(`warning: ${warning}`);
				printLine(
					`next run: ${day(report.nextRun ?? undefined)}; it will have renewed protection by ${day(report.horizon)}, so every copy must stay locked until then`,
				);
				printLine(
					`upload: ${count(report.upload.files, "file")} (${summary.files.reincluded} re-included), ${core().formatBytes(report.upload.read)} read, ${core().formatBytes(report.upload.bytes)} in ${count(report.upload.objects, "object")}`,
				);
				for (const note of plan.notes.slice(0, 20)) printLine(`  re-include ${note}`);
				if (report.renew.blobs > 0)
					printLine(
						`renew: ${count(report.renew.blobs, "blob")} (${core().formatBytes(report.renew.bytes)}) older snapshots need, copied into new packs before their locks end`,
					);
				printLine(`extend: ${count(report.extend.length, "object")}`);
				for (const e of report.extend.slice(0, 20)) printLine(`  ${e.key}: ${day(e.from ?? undefined)} -> ${day(e.to)}`);
				printLine(
					`the snapshot: protected until ${day(report.protectUntil)}${report.tier ? ` (the first of its ${report.tier})` : ""}; new objects locked until ${day(report.lockUntil)}`,
				);
			}),
	);
}

async function printForecast(session: Session, args: Args): Promise<void> {
	const { engine, host, clock } = session;
	if (!host.container.isBound(core().TOKENS.Forecaster)) {
		throw new (core().HoldfastError)("USAGE", "--forecast needs @holdfast/plugin-retention-planner in plugins");
	}
	const forecaster = host.container.get<Forecaster>(core().TOKENS.Forecaster);
	const open = await engine.open(args.set as string | undefined);
	const start = parseTime(args.at, "--at") ?? clock.now();
	const latest = (await open.repository.listSnapshots()).filter((r) => r.snapshot.set === open.name).at(-1);
	let prices: PriceTable | undefined;
	if (args.prices) {
		try {
			prices = JSON.parse(await readFile(String(args.prices), "utf8")) as PriceTable;
		} catch (cause) {
			throw new (core().HoldfastError)("USAGE", `--prices ${String(args.prices)}: ${(cause as Error).message}`, { cause });
		}
	}
	const periodDays = core().parseDuration(parseNonEmpty(args.forecast, "--forecast"), "--forecast") / core().DAY_MS;
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
		`forecast over ${count(periodDays, "day")}, ${count(report.assumptions.runs, "run")}, ${core().formatBytes(latest?.snapshot.summary.bytes ?? 0)} of data, ${changeRate} % changing a week${rewrite ? ` (${rewrite} % of it rewriting data changed lately)` : ""}`,
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
			core().formatBytes(s.uploadBytes),
			core().formatBytes(s.peakStoredBytes),
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
