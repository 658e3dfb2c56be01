import { appendFile } from "node:fs/promises";
import { resolve } from "node:path";
import { definePlugin, STAGE } from "@holdfast/core";

interface AuditLogOptions {
	/** JSON-lines file, one line per run. */
	file: string;
}

/**
 * A third-party plugin written only against `@holdfast/core`'s public exports: it appends a
 * line per run (what, which set, outcome) to an audit file that an auditor can keep.
 */
export default definePlugin<AuditLogOptions>({
	name: "audit-log",
	version: "0.1.0",
	engine: "^0.1.0",
	optionsSchema: {
		type: "object",
		additionalProperties: false,
		required: ["file"],
		properties: { file: { type: "string", minLength: 1 } },
	},
	activate(context) {
		const file = resolve(context.options.file);
		const write = (line: Record<string, unknown>) => appendFile(file, `${JSON.stringify(line)}\n`);
		context.hooks.afterRun.tapPromise({ name: context.name, stage: STAGE.REPORT }, async (run, result) => {
			const snapshot = (result as { snapshot?: { id: string } } | undefined)?.snapshot;
			await write({
				at: context.clock.now().toISOString(),
				run: run.kind,
				set: run.setName,
				ok: true,
				...(snapshot ? { snapshot: snapshot.id } : {}),
			});
		});
		context.hooks.failed.tapPromise({ name: context.name, stage: STAGE.REPORT }, async (run, error) => {
			await write({ at: context.clock.now().toISOString(), run: run.kind, set: run.setName, ok: false, error: error.message });
		});
	},
});
