import type { Argv } from "yargs";
import { EXIT } from "../exit-codes.js";
import { printJson, printLine } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { printDoctorReport } from "./doctor.js";
import { type Args, naming, withSession } from "./run-session.js";

/** `holdfast init`: the repository at the set's destination, then the doctor's findings. */
export function registerInitCommand(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	cli.command(
		"init [set]",
		"create the repository at the set's destination (checks the bucket first, then runs doctor)",
		(y) => y.positional("set", { type: "string" }).example("$0 init office", "create office's repository"),
		(args) =>
			withSession(
				args as Args,
				async (session) => {
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
					// The table is on stdout, which a script may send away: what needs a look is said on stderr too.
					for (const finding of doctor.findings) {
						if (finding.status === "warn" || finding.status === "fail") {
							session.logger.warn(`${doctor.set}: ${finding.check}: ${finding.detail}`);
						}
					}
				},
				{ unlocksSet: true },
			),
	);
}
