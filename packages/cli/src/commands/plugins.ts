import type { Argv } from "yargs";
import { printJson, printTable } from "../output.js";
import type { GlobalOptions } from "../session.js";
import { type Args, withSession } from "./run-session.js";

/** `holdfast plugins`: what the config loads, or what the CLI brings. */
export function registerPluginsCommand(cli: Argv<GlobalOptions>, _setExit: (code: number) => void): void {
	cli.command(
		"plugins",
		"the plugins the config loads, their versions and contributions (without a config: the bundled ones)",
		(y) => y.example("$0 plugins", "what is loaded, or what could be"),
		async (args) => {
			const { noConfigAnywhere } = await import("../config-presence.js");
			if (noConfigAnywhere(args as Args)) {
				const { bundledPluginRows } = await import("../bundled-plugins.js");
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
