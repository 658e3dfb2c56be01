import { CLI_DIR } from "./cli-dir.js";

/** The plugins installed with the CLI: what `holdfast plugins` lists before there is a config. */
export const BUNDLED_PLUGINS = [
	"@holdfast/plugin-fs-source",
	"@holdfast/plugin-fs-destination",
	"@holdfast/plugin-b2",
	"@holdfast/plugin-retention-planner",
	"@holdfast/plugin-groom",
] as const;

export interface PluginRow {
	spec: string;
	name: string;
	version: string;
	contributes: readonly string[];
	loaded: boolean;
	skipped?: string;
}

/** Read from each package's manifest (package.json), without importing the plugin or its SDK. */
export async function bundledPluginRows(): Promise<PluginRow[]> {
	const { resolvePluginManifest } = await import("@holdfast/core");
	return BUNDLED_PLUGINS.map((spec) => {
		const manifest = resolvePluginManifest(spec, CLI_DIR, []);
		return {
			spec,
			name: manifest.packageName ?? spec,
			version: manifest.version ?? "?",
			contributes: manifest.contributes,
			loaded: false,
			skipped: "no config file: installed, not configured",
		};
	});
}
