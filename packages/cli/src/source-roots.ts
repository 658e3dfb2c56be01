import { constants } from "node:fs";
import { access } from "node:fs/promises";
import type { Session } from "./session.js";

/**
 * For `config check`: every local source root that is missing or unreadable, with the config
 * line that names it. A backup of such a set fails, so it is better known before the night.
 */
export async function missingSourceRoots(session: Session): Promise<string[]> {
	const { engine, loaded } = session;
	const warnings: string[] = [];
	for (const name of engine.setNames()) {
		const set = loaded.config.sets[name];
		if (!set) continue;
		const sources = engine.sourcesFor(set);
		for (const [index, source] of sources.entries()) {
			if (set.sources[index]?.type !== "fs") continue;
			for (const root of source.roots) {
				const problem = await rootProblem(root);
				if (problem)
					warnings.push(`${loaded.locate(`sets.${name}.sources.${index}.path`)}: set ${name}: source root ${root} ${problem}`);
			}
		}
	}
	return warnings;
}

async function rootProblem(root: string): Promise<string | undefined> {
	try {
		await access(root, constants.R_OK);
		return undefined;
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		return code === "ENOENT" || code === "ENOTDIR" ? "does not exist" : `cannot be read (${code})`;
	}
}
