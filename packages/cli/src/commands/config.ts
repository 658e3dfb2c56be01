import type * as Core from "@holdfast/core";
import type { Argv } from "yargs";
import { printJson, printLine } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { count } from "../words.js";
import { type Args, core, withSession } from "./run-session.js";

/** `holdfast config`: the config's JSON Schema, and a check of a config file. */
export function registerConfigCommand(cli: Argv<GlobalOptions>, _setExit: (code: number) => void): void {
	cli.command("config <action>", "print the JSON Schema of the config, or check a config file", (y) =>
		y
			.command(
				"schema",
				"print the JSON Schema (with the schemas of the configured plugins when a config is found)",
				(z) => z,
				async (args) => {
					try {
						await withSession(args as Args, async ({ host }) => {
							printJson(core().fullConfigSchema(host.schemas()));
						});
					} catch {
						const { bundledSetKeys } = await import("../bundled-schema.js");
						const setKeys = await bundledSetKeys();
						printJson(core().fullConfigSchema({ sources: new Map(), destinations: new Map(), setKeys }));
					}
				},
			)
			.command(
				"check",
				"validate the config file and the options of every plugin",
				(z) => z,
				(args) =>
					withSession(args as Args, async (session) => {
						const { missingSourceRoots } = await import("../source-roots.js");
						const warnings = await missingSourceRoots(session);
						// Secrets come from the environment: what a run here would lack, though cron's may differ.
						const { passwordProblem } = await import("../session.js");
						const password = await passwordProblem(args as Args, session.loaded);
						if (password) warnings.push(password);
						for (const name of session.engine.setNames()) {
							const destination = session.engine.destinationFor(name, session.engine.resolveSet(name).set);
							for (const line of destination.missingEnvironment?.() ?? []) warnings.push(`set ${name}: destination: ${line}`);
						}
						// Without a planner nothing renews a lock: said before the first run, not found by check later.
						// (Taps, not isUsed(): the core's tap attribution intercepts every hook.)
						if (session.host.hooks.plan.taps.length === 0) {
							warnings.push(
								"no planner plugin is loaded (@holdfast/plugin-retention-planner): each object is locked for the retention when it is written and never renewed, so a snapshot's older objects lose their lock before its window ends (holdfast check shows the gaps)",
							);
						}
						// What a set's schedule cannot promise, said before the first run rather than after.
						if (session.host.container.isBound(core().TOKENS.ScheduleAdvisor)) {
							const advisor = session.host.container.get<Core.ScheduleAdvisor>(core().TOKENS.ScheduleAdvisor);
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
