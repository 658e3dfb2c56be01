import { resolve } from "node:path";
import { definePlugin, type RunContext, STAGE } from "@holdfast/core";
import { AuditFile } from "./audit-file.js";

interface AuditLogOptions {
	/** JSON-lines file: a line per run, per object written and per warning. */
	file: string;
	/** Also a line per new or changed file of each backup. */
	changes?: boolean;
}

/**
 * A third-party plugin written only against `@holdfast/core`'s public exports: it appends to an
 * audit file an auditor can keep a line per run (what, which set, outcome), per object written
 * (key, size, lock), per warning, and, if asked, per changed file. A run whose audit file cannot
 * be written is refused before it starts: an unaudited backup is what this plugin exists to prevent.
 */
export default definePlugin<AuditLogOptions>({
	name: "audit-log",
	version: "0.1.0",
	engine: "^0.1.0",
	optionsSchema: {
		type: "object",
		additionalProperties: false,
		required: ["file"],
		properties: {
			file: { type: "string", minLength: 1 },
			changes: { type: "boolean", default: false },
		},
	},
	activate(context) {
		const audit = new AuditFile(resolve(context.configDir, context.options.file));
		context.disposables.defer(() => audit.close());
		const at = () => context.clock.now().toISOString();
		const runLine = (run: RunContext) => ({ at: at(), run: run.kind, set: run.setName });
		const report = { name: context.name, stage: STAGE.REPORT };

		context.hooks.validate.tapPromise({ name: context.name, stage: STAGE.EARLY }, async () => {
			try {
				await audit.flush();
				await audit.open();
			} catch (error) {
				throw new Error(`cannot write the audit log ${audit.path}: ${(error as Error).message}`);
			}
		});
		if (context.options.changes) {
			context.hooks.diff.tap(report, (change, scanned, run) => {
				if (!run.dryRun && (change.kind === "new" || change.kind === "changed")) {
					audit.add({ event: "change", ...runLine(run), path: scanned.path, change: change.kind });
				}
				return change;
			});
		}
		context.hooks.warning.tap(report, (warning, run) => {
			audit.add({ event: "warning", ...runLine(run), path: warning.path, reason: warning.reason });
		});
		context.hooks.didUploadObject.tap(report, (object, setName) => {
			audit.add({
				event: "object",
				at: at(),
				set: setName,
				key: object.key,
				kind: object.kind,
				size: object.size,
				lock: object.lock.mode,
				until: object.lock.until.toISOString(),
			});
		});
		// Data is written and the snapshot is next: the objects are on record before anything names them.
		context.hooks.upload.tapPromise(report, async (summary, run) => {
			audit.add({ event: "upload", ...runLine(run), files: summary.files, bytesUploaded: summary.bytes.uploaded });
			await audit.flush();
		});
		context.hooks.afterRun.tapPromise(report, async (run, result) => {
			const snapshot = (result as { snapshot?: { id: string } } | undefined)?.snapshot;
			audit.add({ event: "run", ...runLine(run), ok: true, ...(snapshot ? { snapshot: snapshot.id } : {}) });
			await audit.flush();
		});
		context.hooks.failed.tapPromise(report, async (run, error) => {
			audit.add({ event: "run", ...runLine(run), ok: false, error: error.message });
			await audit.flush();
		});
	},
});
