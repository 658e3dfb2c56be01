import { readFileSync, realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { KeyDerivationInput } from "@holdfast/core/key-derivation";
import type { PasswordSource } from "./unlock-hints.js";

// Starting scrypt before the key file is read, from the salt and parameters of the key file that
// opened the set last time (unlock-hints.ts). scrypt takes 70 ms or more on the libuv pool, and a
// command spends about as long loading the core and its plugins before a destination can read a
// key file: when the launcher starts it (bin/holdfast.js imports this file before anything else),
// the two overlap. This file imports nothing until the command line says the command unlocks a
// set, so --help pays for none of it. The launcher and the CLI's bundle each hold a copy of this
// module; the derivation passes between them on `globalThis`.

/** Commands that open the repository of a set (`SessionOptions.unlocksSet`). */
const UNLOCKING = new Set(["snapshots", "backup", "restore", "ls", "check", "groom"]);
/** Global options that take a value, which is not the command's name. */
/** Options that take a value, as yargs reads them: each by its name and its camel-case form. */
const VALUED = new Map([
	["--config", "--config"],
	["--now", "--now"],
	["--password-file", "--password-file"],
	["--passwordFile", "--password-file"],
]);

const LAUNCHED = Symbol.for("holdfast.launched-derivation");

/** A derivation the launcher started, for the session to adopt. */
export interface LaunchedDerivation {
	readonly password: string;
	readonly input: KeyDerivationInput;
	readonly deriving: Promise<Buffer>;
}

/**
 * Run by the launcher with the command line, before the CLI loads: when the command unlocks a
 * set, and the config file is byte for byte the one whose only set was recorded, starts deriving
 * that set's key with the password the command will read (`--password-file`, else
 * `HOLDFAST_PASSWORD`, else what the config names). Anything it cannot tell starts nothing; a
 * guess that turns out wrong is a derivation the unlock does not take.
 */
export async function deriveAtLaunch(
	argv: readonly string[],
	env: NodeJS.ProcessEnv = process.env,
	cwd = process.cwd(),
): Promise<void> {
	let command: string | undefined;
	let config = env.HOLDFAST_CONFIG ?? "holdfast.yaml";
	let passwordFile: string | undefined;
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i] as string;
		if (arg === "--" || arg === "--help" || arg === "-h" || arg === "--version") return;
		const equals = arg.startsWith("--") ? arg.indexOf("=") : -1;
		const flag = VALUED.get(equals > 0 ? arg.slice(0, equals) : arg);
		if (flag !== undefined) {
			const value = equals > 0 ? arg.slice(equals + 1) : argv[++i];
			if (flag === "--config") config = value ?? config;
			if (flag === "--password-file") passwordFile = value;
		} else if (command === undefined && !arg.startsWith("-")) {
			command = arg;
		}
	}
	if (command === undefined || !UNLOCKING.has(command)) return;
	// Loaded only now: --help and commands that unlock nothing load none of it.
	const { configKey, hintsFile, isDerivationInput, readConfigHints, textHash } = await import("./unlock-hints.js");
	const file = hintsFile(env);
	const key = configKey(config, cwd);
	if (!file || !key) return;
	try {
		const hints = readConfigHints(file, key);
		const hint = hints?.only === undefined ? undefined : hints.sets[hints.only];
		if (!hints || !hint || !isDerivationInput(hint) || textHash(readFileSync(key)) !== hints.text) return;
		const password = launchPassword(passwordFile, hints.password, env, cwd);
		if (!password) return;
		const input = { salt: hint.salt, N: hint.N, r: hint.r, p: hint.p };
		const { deriveKey } = await import("@holdfast/core/key-derivation");
		const deriving = deriveKey(password, Buffer.from(input.salt, "base64"), input);
		// A derivation nobody takes must not fail the command.
		deriving.catch(() => undefined);
		(globalThis as Record<symbol, LaunchedDerivation | undefined>)[LAUNCHED] = { password, input, deriving };
	} catch {
		// a hint it cannot read starts nothing
	}
}

/** The derivation the launcher started, once; undefined when it started none. */
export function takeLaunchedDerivation(): LaunchedDerivation | undefined {
	const holder = globalThis as Record<symbol, LaunchedDerivation | undefined>;
	const launched = holder[LAUNCHED];
	holder[LAUNCHED] = undefined;
	return launched;
}

/** The password as the session's `readPassword` finds it, read the same way; undefined where it would fail. */
function launchPassword(
	passwordFile: string | undefined,
	source: PasswordSource | undefined,
	env: NodeJS.ProcessEnv,
	cwd: string,
): string | undefined {
	if (passwordFile !== undefined) return readPasswordFile(resolve(cwd, passwordFile));
	if (env.HOLDFAST_PASSWORD) return env.HOLDFAST_PASSWORD;
	if (!source) return undefined;
	return "env" in source ? env[source.env] || undefined : readPasswordFile(source.file);
}

/** A path under /dev or /proc, where a descriptor's file is reached; /dev/shm is a file system of plain files. */
function throughDescriptor(path: string): boolean {
	return /^\/(dev|proc)\//.test(path) && !path.startsWith("/dev/shm/");
}

function readPasswordFile(path: string): string | undefined {
	try {
		// Only a regular file: a pipe (`--password-file /dev/stdin`, `<(pass x)`) can be read once, and that is the command's.
		// Nor a file reached through a descriptor (`/dev/stdin < file`, or a link to it): on BSD and
		// macOS reading it moves the offset the command reads from.
		if (throughDescriptor(path) || throughDescriptor(realpathSync(path)) || !statSync(path).isFile()) return undefined;
		// as readSecret in the core: one line end at the end is not part of the password
		return readFileSync(path, "utf8").replace(/\r?\n$/, "");
	} catch {
		return undefined;
	}
}
