import { describeError, formatBytes, HoldfastError, isHoldfastError } from "@holdfast/core";
import yargs, { type Argv } from "yargs";
import { registerCommands } from "./commands.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import type { GlobalOptions } from "./session.js";

export { formatBytes };

/** Runs the CLI on `argv`; resolves to the exit code (never calls process.exit). */
export async function main(argv: string[]): Promise<number> {
	let exitCode: number = EXIT.ok;
	let verbose = argv.includes("--verbose");
	const cli = yargs(argv)
		.scriptName("holdfast")
		.usage("$0 <command> [options]\n\nBackups ransomware cannot delete.")
		.option("config", { type: "string", describe: "config file (default ./holdfast.yaml or $HOLDFAST_CONFIG)", global: true })
		.option("now", { type: "string", describe: "run as if it were this ISO time (what-if planning, tests)", global: true })
		.option("json", { type: "boolean", describe: "one JSON document on stdout, nothing else there", global: true })
		.option("quiet", { type: "boolean", alias: "q", describe: "errors only", global: true })
		.option("verbose", { type: "boolean", alias: "v", describe: "debug lines and stack traces", global: true })
		.option("progress", { type: "boolean", default: true, describe: "progress bar on a terminal (--no-progress)", global: true })
		.option("password-file", { type: "string", describe: "read the repository password from this file", global: true })
		.strict()
		.demandCommand(1, "name a command (holdfast --help lists them)")
		.recommendCommands()
		.exitProcess(false)
		.wrap(Math.min(110, process.stdout.columns ?? 100))
		.fail((message, error) => {
			throw error ?? new HoldfastError("USAGE", message);
		}) as unknown as Argv<GlobalOptions>;
	registerCommands(cli, (code) => {
		exitCode = code;
	});
	try {
		const parsed = await cli.parseAsync();
		verbose = Boolean((parsed as GlobalOptions).verbose);
		return exitCode;
	} catch (error) {
		const code = isHoldfastError(error) ? exitCodeFor(error) : isYargsError(error) ? EXIT.usage : EXIT.failed;
		process.stderr.write(`holdfast: ${describeError(error)}\n`);
		if (error instanceof HoldfastError && error.message.includes("\n")) {
			for (const line of error.message.split("\n").slice(1)) process.stderr.write(`holdfast: ${line}\n`);
		}
		if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
		return code;
	}
}

function isYargsError(error: unknown): boolean {
	return error instanceof Error && error.name === "YError";
}
