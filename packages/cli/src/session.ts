import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import {
	type Catalog,
	type Clock,
	DEFAULT_CATALOG_URI,
	DEFAULT_CONFIG_FILE,
	EarlyKeyDerivations,
	Engine,
	HoldfastError,
	isHoldfastError,
	type KeyDerivationInput,
	type Logger,
	loadConfigFile,
	ManualClock,
	OffsetClock,
	openCatalog,
	type ParsedConfig,
	PluginHost,
	readSecret,
	SinkLogger,
	SystemClock,
} from "@holdfast/core";
import { CLI_DIR } from "./cli-dir.js";
import { takeLaunchedDerivation } from "./derive-at-launch.js";
import { parseIsoTime } from "./input.js";
import { configKey, hintsFile, readConfigHints, recordUnlock, setHint, textHash } from "./unlock-hints.js";

export interface GlobalOptions {
	config?: string;
	now?: string;
	json?: boolean;
	quiet?: boolean;
	verbose?: boolean;
	progress?: boolean;
	passwordFile?: string;
}

/** Everything one command needs: the config, the started plugin host, the engine. */
export interface Session {
	readonly loaded: ParsedConfig;
	readonly host: PluginHost;
	readonly engine: Engine;
	readonly clock: Clock;
	readonly logger: Logger;
	readonly catalog: Catalog;
	close(): Promise<void>;
}

export function configPath(options: GlobalOptions): string {
	return options.config ?? process.env.HOLDFAST_CONFIG ?? DEFAULT_CONFIG_FILE;
}

/**
 * `--now` stands still for one-shot commands (what-if planning); for the daemon it is where
 * the clock starts, and it keeps running from there.
 */
export function makeClock(options: GlobalOptions, running = false): Clock {
	if (options.now === undefined) return new SystemClock();
	const at = parseIsoTime(options.now, "--now");
	return running ? new OffsetClock(at) : new ManualClock(at);
}

export function makeLogger(options: GlobalOptions): Logger {
	return new SinkLogger(undefined, options.verbose ? "debug" : options.quiet ? "warn" : "info");
}

export interface SessionOptions {
	/** The daemon's clock keeps running from `--now`. */
	readonly runningClock?: boolean;
	/**
	 * The command opens (or, `init`, creates) the repository of its set (`set` among its
	 * arguments, else the config's only set): scrypt starts from what the last unlock of that set
	 * recorded, while the plugins load, and this unlock is recorded for the next command.
	 */
	readonly unlocksSet?: boolean;
}

export async function openSession(
	options: GlobalOptions & { set?: unknown },
	sessionOptions: SessionOptions = {},
): Promise<Session> {
	const file = configPath(options);
	if (!existsSync(file)) {
		throw new HoldfastError("CONFIG_INVALID", `${file}: no config file (write one, or pass --config FILE; see the README)`);
	}
	// Problems inside the sets wait for the plugins' schemas, so one run names them all.
	const loaded = await loadConfigFile(file, { deferSetProblems: true });
	// Read once: a password file that is a pipe (`--password-file /dev/stdin`) gives it only once.
	// A read that failed is not kept: the daemon's next run reads again (a secret mounted late).
	let reading: Promise<string> | undefined;
	const password = () => {
		reading ??= readPassword(options, loaded).catch((error: unknown) => {
			reading = undefined;
			throw error;
		});
		return reading;
	};
	const ahead = sessionOptions.unlocksSet ? await deriveAhead(options, loaded, password) : undefined;
	const clock = makeClock(options, sessionOptions.runningClock);
	const logger = makeLogger(options);
	const catalog = await openCatalog(loaded.config.catalog ?? DEFAULT_CATALOG_URI, loaded.dir, undefined, {
		onDamage: (line) => logger.warn(line),
	});
	const host = new PluginHost({ loaded, clock, logger, catalog, searchDirs: [CLI_DIR] });
	try {
		await host.start();
	} catch (error) {
		await catalog.disconnect().catch(() => undefined);
		throw locatePluginError(error, loaded);
	}
	const engine = new Engine({
		host,
		loaded,
		clock,
		logger,
		catalog,
		password,
		...(process.env.HOLDFAST_SCRYPT_N ? { scrypt: { N: Number(process.env.HOLDFAST_SCRYPT_N), r: 8, p: 1 } } : {}),
		...ahead,
	});
	try {
		engine.validateSets();
	} catch (error) {
		await engine.close();
		await host.dispose();
		await catalog.disconnect();
		throw error;
	}
	return {
		loaded,
		host,
		engine,
		clock,
		logger,
		catalog,
		async close() {
			await engine.close();
			await host.dispose();
			await catalog.disconnect();
		},
	};
}

/**
 * Starts deriving the set's key from the salt and parameters of the key file that opened it last
 * time, before the plugins that read key files are loaded (or takes in what the launcher started
 * sooner still); and records, once the repository opens, which key file did. The destination
 * options are taken as written, before the plugins fill in their defaults, so the same config
 * finds its own record.
 */
async function deriveAhead(
	options: GlobalOptions & { set?: unknown },
	loaded: ParsedConfig,
	passwordOnce: () => Promise<string>,
): Promise<{ earlyKeys: EarlyKeyDerivations; onUnlocked: (setName: string, input: KeyDerivationInput) => void }> {
	const earlyKeys = new EarlyKeyDerivations();
	const launched = takeLaunchedDerivation();
	if (launched) earlyKeys.adopt(launched.password, launched.input, launched.deriving);
	const file = hintsFile();
	const key = configKey(loaded.file);
	if (!file || !key) return { earlyKeys, onUnlocked: () => undefined };
	const hints = readConfigHints(file, key);
	const written = new Map(Object.entries(loaded.config.sets).map(([name, set]) => [name, structuredClone(set?.destination)]));
	const names = [...written.keys()];
	const setName = typeof options.set === "string" ? options.set : names.length === 1 ? names[0] : undefined;
	const hint = setName !== undefined && written.has(setName) ? setHint(hints, setName, written.get(setName)) : undefined;
	// No password yet is not this step's to report: the unlock says it, where it always has.
	const password = hint && (await passwordOnce().catch(() => undefined));
	// Started already when the launcher guessed the same password and key file.
	if (hint && password) earlyKeys.start(password, hint);
	return {
		earlyKeys,
		onUnlocked: (name, input) => {
			if (!written.has(name)) return;
			try {
				const text = textHash(readFileSync(key));
				const secret = loaded.config.password;
				const password = secret && ("env" in secret ? { env: secret.env } : { file: resolve(loaded.dir, secret.file) });
				const config = { text, ...(names.length === 1 ? { only: names[0] } : {}), ...(password ? { password } : {}) };
				recordUnlock(file, key, config, name, written.get(name), input);
			} catch {
				// only a hint: the config file gone since it was read, say
			}
		},
	};
}

/** A plugin the config names but that cannot be found is a mistake in the config: file:line, exit 2. */
function locatePluginError(error: unknown, loaded: ParsedConfig): unknown {
	if (!isHoldfastError(error, "PLUGIN_LOAD")) return error;
	const specs = (loaded.config.plugins ?? []).map((p) => (typeof p === "string" ? p : p.use));
	const index = specs.findIndex((spec) => error.message.startsWith(`plugin ${spec}:`));
	if (index < 0) return error;
	return new HoldfastError("CONFIG_INVALID", `${loaded.locate(`plugins.${index}`)}: ${error.message}`, { cause: error });
}

/** Why a command run here and now would have no password; undefined when it would have one. */
export function passwordProblem(options: GlobalOptions, loaded: ParsedConfig): Promise<string | undefined> {
	return readPassword(options, loaded).then(
		() => undefined,
		(error: unknown) => (error instanceof Error ? error.message : String(error)),
	);
}

async function readPassword(options: GlobalOptions, loaded: ParsedConfig): Promise<string> {
	if (options.passwordFile)
		return readSecret({ file: resolve(options.passwordFile) }, process.cwd(), process.env, "--password-file");
	if (process.env.HOLDFAST_PASSWORD) return process.env.HOLDFAST_PASSWORD;
	if (loaded.config.password) return readSecret(loaded.config.password, loaded.dir, process.env, `${loaded.file}: password`);
	throw new HoldfastError(
		"USAGE",
		"no password: set HOLDFAST_PASSWORD, pass --password-file, or name an env var in the config's password",
	);
}
