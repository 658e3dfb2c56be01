import { setFlagsFromString } from "node:v8";
import yargs, { type Argv } from "yargs";
import { endQuietlyOnClosedPipe } from "./closed-pipe.js";
import { registerCommands } from "./commands.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { parseIsoTime } from "./input.js";
import { growHeapBySize, HEAP_GROWTH } from "./node-tuning.js";
import type { GlobalOptions } from "./session.js";
import { UsageError } from "./usage-error.js";
import { CLI_VERSION } from "./version.js";
import { BACKUP_YOUNG_GENERATION, capYoungGeneration, RESTORE_YOUNG_GENERATION } from "./young-generation.js";

/** Commands that back up: their main thread handles every file; its young generation is capped and its old one grows less. */
const BACKING_UP = new Set(["backup", "daemon"]);
/** Commands whose main thread plans every file of a snapshot: their young generation is capped too. */
const READING_ALL = new Set(["restore", "check"]);
let youngCapped = false;

/**
 * Runs the CLI on `argv`; resolves to the exit code (never calls process.exit). Only yargs is
 * loaded here: the engine, its plugins and their SDKs are imported by the commands that use them.
 */
export async function main(argv: string[]): Promise<number> {
	endQuietlyOnClosedPipe();
	let exitCode: number = EXIT.ok;
	let verbose = argv.includes("--verbose") || argv.includes("-v");
	const cli = yargs(argv)
		.scriptName("holdfast")
		.usage("$0 <command> [options]\n\nBackups ransomware cannot delete. Times are shown and read in UTC.")
		.version(CLI_VERSION)
		// holdfast speaks English: yargs' own words (Options:, Show help) too, whatever $LANG says.
		.detectLocale(false)
		.option("config", { type: "string", describe: "config file (default ./holdfast.yaml or $HOLDFAST_CONFIG)", global: true })
		.option("now", { type: "string", describe: "run as if it were this ISO time, UTC unless a zone is given", global: true })
		.option("json", { type: "boolean", describe: "one JSON document on stdout, nothing else there", global: true })
		.option("quiet", {
			type: "boolean",
			alias: "q",
			describe: "no progress and no report of a run that went well; warnings and errors still",
			global: true,
		})
		.option("verbose", { type: "boolean", alias: "v", describe: "debug lines and stack traces", global: true })
		.option("progress", { type: "boolean", default: true, describe: "progress on a terminal (--no-progress)", global: true })
		.option("password-file", { type: "string", describe: "read the repository password from this file", global: true })
		.middleware((args) => {
			// Checked before any command runs, so a bad global never half-runs one.
			if (args.now !== undefined) parseIsoTime(args.now, "--now");
			for (const flag of ["config", "password-file"] as const) {
				if (args[flag] !== undefined && String(args[flag]).trim() === "") throw new UsageError(`--${flag}: needs a value`);
			}
			const command = String(args._[0]);
			if ((BACKING_UP.has(command) || READING_ALL.has(command)) && !youngCapped) {
				youngCapped = true;
				capYoungGeneration(BACKING_UP.has(command) ? BACKUP_YOUNG_GENERATION : RESTORE_YOUNG_GENERATION);
				if (BACKING_UP.has(command)) setFlagsFromString(HEAP_GROWTH);
				else growHeapBySize();
			}
		})
		.strict()
		.demandCommand(1, "name a command (holdfast --help lists them)")
		.recommendCommands()
		.exitProcess(false)
		.wrap(Math.min(110, process.stdout.columns ?? 100))
		.fail((message, error) => {
			throw error ?? new UsageError(message);
		}) as unknown as Argv<GlobalOptions>;
	registerCommands(cli, (code) => {
		exitCode = code;
	});
	skipHelpRendering(cli);
	try {
		const parsed = await cli.parseAsync();
		verbose = Boolean((parsed as GlobalOptions).verbose);
		return exitCode;
	} catch (error) {
		const code = isYargsError(error) ? EXIT.usage : exitCodeFor(error);
		const lines = error instanceof Error ? error.message.split("\n") : [String(error)];
		for (const line of isHoldfastLike(error) ? lines : lines.slice(0, 1)) process.stderr.write(`holdfast: ${line}\n`);
		if (verbose && error instanceof Error) printStacks(error);
		return code;
	}
}

type UsageInternals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };

/**
 * yargs renders a command's whole help before running it, for a handler that might show it
 * later; no holdfast command does, and the rendering is a sizeable part of a short command's
 * start. Where yargs' internals differ from this, nothing changes.
 */
function skipHelpRendering(cli: Argv<GlobalOptions>): void {
	const usage = (cli as unknown as UsageInternals).getInternalMethods?.().getUsageInstance?.();
	if (typeof usage?.cacheHelpMessage === "function") usage.cacheHelpMessage = () => undefined;
}

function isYargsError(error: unknown): boolean {
	return error instanceof Error && error.name === "YError";
}

/** Errors of the project (they carry a code) may list one problem per line; others show their first line. */
function isHoldfastLike(error: unknown): boolean {
	return (
		error instanceof Error && typeof (error as { code?: unknown }).code === "string" && !(error as { errno?: unknown }).errno
	);
}

/**
 * --verbose: the error's stack, then each cause's (a plugin's own frames are in the cause the
 * core wrapped), leaving out a cause whose frames are the ones just printed.
 */
function printStacks(error: Error): void {
	const frames = (e: Error) => e.stack?.split("\n").slice(1).join("\n") ?? "";
	let shown: Error = error;
	process.stderr.write(`${error.stack ?? error.message}\n`);
	for (let cause = error.cause, depth = 0; cause instanceof Error && depth < 8; cause = cause.cause, depth++) {
		if (frames(cause) !== frames(shown)) process.stderr.write(`caused by: ${cause.stack ?? cause.message}\n`);
		shown = cause;
	}
}
