import type { DoctorFinding, DoctorReport } from "@holdfast/core";
import type { Argv } from "yargs";
import { EXIT } from "../exit-codes.js";
import { printJson, printLine, printTable } from "../output.js";
import type { GlobalOptions, Session } from "../session.js";

type Args = GlobalOptions & Record<string, unknown>;

export interface DoctorCommandDeps {
	readonly withSession: <T>(args: Args, body: (session: Session) => Promise<T>) => Promise<T>;
	readonly setExit: (code: number) => void;
}

const SHOWN: Record<DoctorFinding["status"], string> = { ok: "ok", warn: "WARN", fail: "FAIL", unproven: "not proven" };

/** `holdfast doctor`: the destination and its keys, checked and proven before the first byte. */
export function registerDoctorCommand(cli: Argv<GlobalOptions>, { withSession, setExit }: DoctorCommandDeps): void {
	cli.command(
		"doctor [set]",
		"check the destination and what its keys may do (Object Lock, versioning, clock, delete and bypass rights)",
		(y) =>
			y
				.positional("set", { type: "string", describe: "one set (default: every set of the config)" })
				.example("$0 doctor office", "is office's bucket safe, and can its backup key delete?"),
		(args) =>
			withSession(args as Args, async ({ engine }) => {
				const names = args.set ? [String(args.set)] : engine.setNames();
				const reports: DoctorReport[] = [];
				for (const name of names) reports.push(await engine.doctor(name));
				if (reports.some((r) => r.verdict === "fail")) setExit(EXIT.failed);
				if (args.json) return printJson(reports);
				reports.forEach((report, i) => {
					if (i > 0) printLine();
					printDoctorReport(report);
					for (const f of report.findings.filter((x) => x.status === "warn"))
						process.stderr.write(`holdfast: warning: ${report.set}: ${f.check}: ${f.detail}\n`);
				});
			}),
	);
}

/** The findings as a table, then the verdict in one line. */
export function printDoctorReport(report: DoctorReport): void {
	printLine(`doctor: set ${report.set}, ${report.destination}`);
	printTable(
		["check", "result", "detail"],
		report.findings.map((f) => [f.check, SHOWN[f.status], f.detail]),
	);
	printLine(verdictLine(report));
}

function verdictLine(report: DoctorReport): string {
	const named = (status: DoctorFinding["status"]) => [
		...new Set(report.findings.filter((f) => f.status === status).map((f) => f.check)),
	];
	const unproven = named("unproven");
	const tail = unproven.length > 0 ? `; not proven: ${unproven.join(", ")}` : "";
	if (report.verdict === "fail") return `verdict: FAILED (${named("fail").join(", ")})${tail}`;
	if (report.verdict === "warn") return `verdict: WARNING (${named("warn").join(", ")})${tail}`;
	return `verdict: ok${tail}`;
}
