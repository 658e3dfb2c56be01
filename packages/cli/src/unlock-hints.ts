import { createHash, randomBytes } from "node:crypto";
import { readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeFoldersSync, userCacheFolder } from "@holdfast/core/folders";
import type { KeyDerivationInput } from "@holdfast/core/key-derivation";

// Which key file opened each set of a config last time, kept in the user's cache folder: what a
// command derives ahead of reading the key file (derive-at-launch.ts, session.ts).

/** Nothing secret: the salt and parameters a key file holds in the clear, and a hash of the set's destination options. */
export interface SetHint extends KeyDerivationInput {
	readonly destination: string;
}

/** The config's password as its file names it (a relative file resolved); never the password. */
export type PasswordSource = { readonly env: string } | { readonly file: string };

/** What the last unlocks with one config file recorded. */
export interface ConfigHints {
	/** sha256 of the config file's bytes: at launch, a hint is used only for the file it was made with. */
	readonly text: string;
	/** The config's only set, when it has one: what a launch without a parsed config can unlock. */
	readonly only?: string;
	readonly password?: PasswordSource;
	readonly sets: Readonly<Record<string, SetHint>>;
}

interface HintFile {
	v: 2;
	/** By the config file's real path, the one recorded last at the end. */
	configs: Record<string, unknown>;
}

/** Hints for this many config files are kept; more is a machine of test runs. */
const KEPT_CONFIGS = 32;

/** The hints file in the user's cache folder; undefined without a home. */
export function hintsFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
	const folder = userCacheFolder(env);
	return folder === undefined ? undefined : join(folder, "unlock-hints.json");
}

/** The config file's real path, the key its hints are kept under; undefined when it cannot be resolved. */
export function configKey(file: string, cwd = process.cwd()): string | undefined {
	try {
		return realpathSync(resolve(cwd, file));
	} catch {
		return undefined;
	}
}

export function textHash(bytes: Uint8Array): string {
	return createHash("sha256").update(bytes).digest("hex");
}

export function destinationHash(destination: unknown): string {
	return createHash("sha256")
		.update(JSON.stringify(destination ?? null))
		.digest("hex");
}

/** What was recorded for the config at `key`; undefined when nothing was, or the file is unreadable. */
export function readConfigHints(file: string, key: string): ConfigHints | undefined {
	const hints = readHintFile(file)?.configs;
	const entry = hints && Object.hasOwn(hints, key) ? hints[key] : undefined;
	return isConfigHints(entry) ? entry : undefined;
}

/** A hand-edited or damaged entry is no hint: each set's own hint is checked again where it is used. */
function isConfigHints(value: unknown): value is ConfigHints {
	if (!isObject(value) || typeof value.text !== "string" || !isObject(value.sets)) return false;
	if (value.only !== undefined && typeof value.only !== "string") return false;
	const password = value.password;
	return (
		password === undefined || (isObject(password) && (typeof password.env === "string" || typeof password.file === "string"))
	);
}

function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The hint for `setName` whose destination options are `destination`; undefined when there is none, or it is not one to derive ahead. */
export function setHint(hints: ConfigHints | undefined, setName: string, destination: unknown): KeyDerivationInput | undefined {
	const hint = hints && Object.hasOwn(hints.sets, setName) ? hints.sets[setName] : undefined;
	if (!isObject(hint) || hint.destination !== destinationHash(destination) || !isDerivationInput(hint)) return undefined;
	return { salt: hint.salt, N: hint.N, r: hint.r, p: hint.p };
}

/**
 * Records the key file that opened `setName` of the config at `key`. A file that cannot be
 * written is left as it was: the next command derives once it has read the key file.
 */
export function recordUnlock(
	file: string,
	key: string,
	config: Omit<ConfigHints, "sets">,
	setName: string,
	destination: unknown,
	input: KeyDerivationInput,
): void {
	const hints = readHintFile(file) ?? { v: 2, configs: {} };
	const before = readConfigHints(file, key);
	// Another text is another config: what was recorded for the old one says nothing about its sets.
	const sets = before?.text === config.text ? before.sets : {};
	const entry: ConfigHints = {
		...config,
		sets: {
			...sets,
			[setName]: { destination: destinationHash(destination), salt: input.salt, N: input.N, r: input.r, p: input.p },
		},
	};
	if (before && JSON.stringify(before) === JSON.stringify(entry)) return;
	// The entry recorded last goes last (an object keeps the order keys were added in), and the oldest go.
	delete hints.configs[key];
	hints.configs[key] = entry;
	hints.configs = Object.fromEntries(Object.entries(hints.configs).slice(-KEPT_CONFIGS));
	const temporary = `${file}.${randomBytes(6).toString("hex")}.tmp`;
	try {
		// Not Node's recursive mkdir: under /proc (XDG_CACHE_HOME=/proc/self) it loops for ever.
		makeFoldersSync(join(file, ".."), 0o700);
		writeFileSync(temporary, `${JSON.stringify(hints)}\n`, { mode: 0o600 });
		renameSync(temporary, file);
	} catch {
		// only a hint
		try {
			rmSync(temporary, { force: true });
		} catch {
			// its folder could not be made
		}
	}
}

function readHintFile(file: string): HintFile | undefined {
	try {
		const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<HintFile>;
		if (parsed?.v !== 2 || typeof parsed.configs !== "object" || parsed.configs === null) return undefined;
		return parsed as HintFile;
	} catch {
		return undefined;
	}
}

/**
 * Parameters worth deriving ahead of reading the key file: a key file's, up to 64 MiB of scrypt
 * memory. Anything else (a hand-edited hint, an unusually costly key file) derives when read.
 */
export function isDerivationInput(value: Partial<KeyDerivationInput> | undefined): value is KeyDerivationInput {
	const { salt, N, r, p } = value ?? {};
	if (typeof salt !== "string" || salt.length === 0) return false;
	if (!Number.isSafeInteger(N) || !Number.isSafeInteger(r) || !Number.isSafeInteger(p)) return false;
	const [n, blocks, lanes] = [N as number, r as number, p as number];
	return n > 1 && (n & (n - 1)) === 0 && blocks >= 1 && lanes >= 1 && lanes <= 4 && n * blocks <= 2 ** 19;
}
