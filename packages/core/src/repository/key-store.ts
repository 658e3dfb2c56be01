import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Destination, ObjectLock } from "../destination/destination.js";
import { classifyFault } from "../destination/faults.js";
import type { Clock } from "../host/clock.js";
import { describeError, HoldfastError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import { open, seal } from "./blob-codec.js";
import { compress, decompress } from "./compression.js";
import { RepositoryKeys, sha256Hex } from "./crypto.js";
import type { EarlyKeyDerivations } from "./early-key.js";
import { CHUNKER_DEFAULTS, FORMAT_VERSION, KEY_PREFIX } from "./format.js";
import { DEFAULT_SCRYPT, deriveKey, type KeyDerivationInput, type ScryptParams } from "./key-derivation.js";
import type { ObjectReader } from "./object-reader.js";
import { listKeys } from "./object-versions.js";
import type { ObjectWriter } from "./object-writer.js";

// The keys to the repository: unlocking the master secret with a password, and the config and key files every snapshot needs.

/** `config`: sealed with the master key; written once at init. */
export interface RepositoryConfig {
	v: typeof FORMAT_VERSION;
	id: string;
	created: string;
	chunker: { min: number; avg: number; max: number };
}

/** `keys/<sha256>`: plaintext JSON; the master secret wrapped by a password-derived key. */
interface KeyFile {
	v: 1;
	kdf: "scrypt";
	N: number;
	r: number;
	p: number;
	salt: string;
	created: string;
	host: string;
	master: string;
}

/** Config copies and key files kept protected at once: one damaged object never locks the owner out. */
export const METADATA_COPIES = 2;

/** What a password opens: the keys, the config, and the metadata objects that verified. */
export interface UnlockedRepository {
	keys: RepositoryKeys;
	config: RepositoryConfig;
	metadata: string[];
	/** The salt and parameters of the key file that opened it: what a later start may derive ahead. */
	unlockedWith: KeyDerivationInput;
}

export interface UnlockOptions {
	/** Runs once, as the first key derivation starts (see `unlockRepository`). */
	readonly whileDeriving?: () => void;
	/** Derivations started before the key files were read; one that fits a key file is used for it. */
	readonly early?: EarlyKeyDerivations | undefined;
}

/** A JSON value sealed with the master key (config, index objects, snapshots). */
export function sealJson(keys: RepositoryKeys, value: unknown): Buffer {
	return keys.seal(compress(Buffer.from(JSON.stringify(value)), true));
}

export function openJson<T>(keys: RepositoryKeys, bytes: Buffer, what: string): T {
	return JSON.parse(decompress(keys.open(bytes, what), what).toString("utf8")) as T;
}

/** A random master secret and a fresh config, for `init`. */
export function newRepository(clock: Clock): { keys: RepositoryKeys; config: RepositoryConfig } {
	const keys = RepositoryKeys.fromMaster(RepositoryKeys.generateMaster());
	const config: RepositoryConfig = {
		v: FORMAT_VERSION,
		id: randomBytes(16).toString("hex"),
		created: clock.now().toISOString(),
		chunker: { ...CHUNKER_DEFAULTS },
	};
	return { keys, config };
}

/**
 * Opens the master secret with `password` from the first key file it fits, then reads the
 * first config copy that verifies. Damaged copies are warned about when another one served.
 * `whileDeriving` runs once, as the first key derivation starts: scrypt takes a tenth of a
 * second on the libuv pool, and what the caller needs next (the catalog) can get ready meanwhile.
 */
export async function unlockRepository(
	password: string,
	destination: Destination,
	reader: ObjectReader,
	logger: Logger,
	options: UnlockOptions = {},
): Promise<UnlockedRepository> {
	const { whileDeriving = () => undefined, early } = options;
	const keyKeys = await listKeys(destination, KEY_PREFIX.keys);
	if (keyKeys.length === 0) {
		throw new HoldfastError("NO_REPOSITORY", `no repository at ${destination.description} (run "holdfast init" first)`);
	}
	// The config copies are listed while the password is checked: the listing does not depend on it.
	const listingConfigs = listKeys(destination, KEY_PREFIX.config);
	// Awaited once a key fits; a wrong password leaves it unread, and its failure with it.
	listingConfigs.catch(() => undefined);
	let deriving: (() => void) | undefined = whileDeriving;
	const started = () => {
		deriving?.();
		deriving = undefined;
	};
	let master: Buffer | undefined;
	let unlockedWith: KeyDerivationInput | undefined;
	const damagedKeys: string[] = [];
	let firstError: unknown;
	let otherPasswords = 0;
	for (const key of keyKeys) {
		try {
			const bytes = await reader.read(key, async (verified) => verified);
			({ master, unlockedWith } = await unwrapKeyFile(bytes, password, key, started, early));
			break;
		} catch (error) {
			if (error instanceof HoldfastError && error.code === "WRONG_PASSWORD") {
				otherPasswords++;
				continue;
			}
			// A store that did not answer says nothing about the password, nor about damage.
			if (classifyFault(error) === "unreachable") throw error;
			firstError ??= error;
			damagedKeys.push(key);
			logger.debug(`key ${key}: ${(error as Error).message}`);
		}
	}
	if (!master || !unlockedWith) {
		// A key file that cannot be read is damage (or a refusal), not a password that does not fit.
		if (damagedKeys.length > 0 && otherPasswords === 0) {
			throw new HoldfastError(
				"CORRUPT",
				`no key file at ${destination.description} could be read (${describeError(firstError)})`,
				{
					cause: firstError,
				},
			);
		}
		throw new HoldfastError(
			"WRONG_PASSWORD",
			`wrong password for the repository at ${destination.description}` +
				(damagedKeys.length > 0 ? ` (${damagedKeys.length} unreadable key file(s) could not be tried)` : ""),
		);
	}
	for (const key of damagedKeys) logger.warn(`${key}: unreadable key file; another copy opened the repository`);
	const keys = RepositoryKeys.fromMaster(master);
	const configKeys = await listingConfigs;
	let config: RepositoryConfig | undefined;
	const damagedConfigs: string[] = [];
	let configError: unknown;
	for (const key of configKeys) {
		try {
			config = await reader.read(key, async (bytes) => openJson<RepositoryConfig>(keys, bytes, key));
			break;
		} catch (error) {
			if (classifyFault(error) === "unreachable") throw error;
			configError ??= error;
			damagedConfigs.push(key);
		}
	}
	if (!config) {
		throw new HoldfastError(
			"CORRUPT",
			`no readable repository config at ${destination.description}${configError ? ` (${describeError(configError)})` : ""}`,
			{ cause: configError },
		);
	}
	for (const key of damagedConfigs) logger.warn(`${key}: unreadable config copy; another copy was read`);
	if (config.v !== FORMAT_VERSION) {
		throw new HoldfastError(
			"CORRUPT",
			`repository format ${String(config.v)} is not supported (this holdfast reads ${FORMAT_VERSION})`,
		);
	}
	const metadata = [...configKeys.filter((k) => !damagedConfigs.includes(k)), ...keyKeys.filter((k) => !damagedKeys.includes(k))];
	return { keys, config, metadata, unlockedWith };
}

/** Config copies and key files: every snapshot needs them, so they are locked and renewed like data. */
export class KeyStore {
	readonly #metadata: string[];
	/** The salt and parameters of each key file written here, by its key. */
	readonly #written = new Map<string, KeyDerivationInput>();

	constructor(
		private readonly keys: RepositoryKeys,
		private readonly config: RepositoryConfig,
		private readonly writer: ObjectWriter,
		private readonly options: { readonly clock: Clock; readonly scrypt?: ScryptParams | undefined },
		metadata: readonly string[] = [],
	) {
		this.#metadata = [...metadata];
	}

	get metadataKeys(): readonly string[] {
		return this.#metadata;
	}

	/**
	 * What an unlock of the key files written here derives first: the salt and parameters of the
	 * one whose key sorts first, the order an unlock tries them in (undefined when none was written).
	 */
	get firstWritten(): KeyDerivationInput | undefined {
		const first = [...this.#written.keys()].sort()[0];
		return first === undefined ? undefined : this.#written.get(first);
	}

	/**
	 * Writes `copies` fresh config copies and key files for this password, locked with the
	 * run's lock. Each copy is written on its own (a new nonce, a new salt), so one damaged
	 * object never costs the repository; stores that cannot extend locks renew them this way.
	 */
	async writeMetadataCopies(password: string, copies = METADATA_COPIES): Promise<string[]> {
		const written: string[] = [];
		for (let i = 0; i < copies; i++) {
			written.push(await this.#writeConfig());
			written.push(await this.addPassword(password, this.writer.requireLock()));
		}
		return written;
	}

	/** Adds a key file for another password; data stays as it is. */
	async addPassword(password: string, lock: ObjectLock): Promise<string> {
		const params = this.options.scrypt ?? DEFAULT_SCRYPT;
		const salt = randomBytes(32);
		const kek = await deriveKey(password, salt, params);
		const file: KeyFile = {
			v: 1,
			kdf: "scrypt",
			...params,
			salt: salt.toString("base64"),
			created: this.options.clock.now().toISOString(),
			host: hostname(),
			master: seal(kek, this.keys.master).toString("base64"),
		};
		const bytes = Buffer.from(JSON.stringify(file));
		const key = `${KEY_PREFIX.keys}${sha256Hex(bytes)}`;
		await this.writer.put(key, bytes, "key", lock);
		this.#metadata.push(key);
		this.#written.set(key, { salt: file.salt, N: file.N, r: file.r, p: file.p });
		return key;
	}

	async #writeConfig(): Promise<string> {
		const sealed = sealJson(this.keys, this.config);
		const key = `${KEY_PREFIX.config}${sha256Hex(sealed)}`;
		await this.writer.put(key, sealed, "config");
		this.#metadata.push(key);
		return key;
	}
}

async function unwrapKeyFile(
	bytes: Buffer,
	password: string,
	key: string,
	started: () => void,
	early: EarlyKeyDerivations | undefined,
): Promise<{ master: Buffer; unlockedWith: KeyDerivationInput }> {
	let file: KeyFile;
	try {
		file = JSON.parse(bytes.toString("utf8")) as KeyFile;
	} catch (cause) {
		throw new HoldfastError("CORRUPT", `${key}: not a key file`, { cause });
	}
	const input: KeyDerivationInput = { salt: file.salt, N: file.N, r: file.r, p: file.p };
	// Started ahead only for this exact salt and these parameters; otherwise derived now, as always.
	const deriving = early?.take(password, input) ?? deriveKey(password, Buffer.from(file.salt, "base64"), file);
	started();
	const kek = await deriving;
	try {
		return { master: open(kek, Buffer.from(file.master, "base64"), key), unlockedWith: input };
	} catch (cause) {
		throw new HoldfastError("WRONG_PASSWORD", "wrong password", { cause });
	}
}
