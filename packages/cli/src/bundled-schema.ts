import type { JsonSchema, PluginDefinition } from "@holdfast/core";
import { BUNDLED_PLUGINS } from "./bundled-plugins.js";
import { CLI_DIR } from "./cli-dir.js";

/**
 * With no config, `holdfast config schema` still shows the set keys the bundled plugins own
 * (`planner`, `groom`). Only plugins that contribute more than source and destination types
 * are imported: a type's options need the config that names it.
 */
export async function bundledSetKeys(): Promise<Map<string, JsonSchema>> {
	const { resolvePluginManifest } = await import("@holdfast/core");
	const setKeys = new Map<string, JsonSchema>();
	for (const spec of BUNDLED_PLUGINS) {
		const manifest = resolvePluginManifest(spec, CLI_DIR, []);
		if (manifest.contributes.every((c) => /^(source|destination):/.test(c))) continue;
		const definition = ((await import(manifest.entryUrl)) as { default?: PluginDefinition }).default;
		for (const [key, schema] of Object.entries(definition?.setKeys ?? {})) setKeys.set(key, schema);
	}
	return setKeys;
}
