import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { deriveKey, type ScryptParams, sha256Hex } from "./crypto.js";

// Starting scrypt before the key file is read: from the salt and parameters of the key file that opened the set last time.

/** What a key file's derivation depends on besides the password; public, as in the key file itself. */
export interface KeyDerivationInput extends ScryptParams {
	/** base64, as the key file writes it. */
	readonly salt: string;
}

/**
 * Derivations started ahead of the key file they are for. A command loads its plugins (tens of
 * milliseconds) before the destination can read a key file, and scrypt takes a tenth of a second
 * on the libuv pool: started from what the last unlock recorded, the two overlap. A key file with
 * another salt or other parameters derives as before; a started derivation nobody takes costs
 * only its time on the pool.
 */
export class EarlyKeyDerivations {
	readonly #started = new Map<string, Promise<Buffer>>();

	/** Starts deriving `password`'s key for a key file made with `input`. */
	start(password: string, input: KeyDerivationInput): void {
		const key = derivationKey(password, input);
		if (this.#started.has(key)) return;
		const deriving = deriveKey(password, Buffer.from(input.salt, "base64"), input);
		// A derivation nobody takes must not fail the command.
		deriving.catch(() => undefined);
		this.#started.set(key, deriving);
	}

	/** The derivation started for exactly this password, salt and parameters, once; undefined when none was. */
	take(password: string, input: KeyDerivationInput): Promise<Buffer> | undefined {
		const key = derivationKey(password, input);
		const deriving = this.#started.get(key);
		this.#started.delete(key);
		return deriving;
	}

	/** How many started derivations are still waiting to be taken. */
	get pending(): number {
		return this.#started.size;
	}
}

function derivationKey(password: string, input: KeyDerivationInput): string {
	return JSON.stringify([password, input.salt, input.N, input.r, input.p]);
}

/**
 * Which key file opened each set last time, in a small JSON file beside the catalog: the salt
 * and scrypt parameters (nothing secret: the key file holds them in the clear), and a hash of
 * the set's destination options, so a set pointed elsewhere starts nothing early.
 */
interface HintFile {
	v: 1;
	sets: Record<string, KeyDerivationInput & { destination: string }>;
}

/** The hint for `setName` whose destination options are `destination`; undefined when there is none, or it is unreadable. */
export function readUnlockHint(file: string, setName: string, destination: unknown): KeyDerivationInput | undefined {
	const hint = readHintFile(file)?.sets[setName];
	if (!hint || hint.destination !== destinationHash(destination) || !isDerivationInput(hint)) return undefined;
	return { salt: hint.salt, N: hint.N, r: hint.r, p: hint.p };
}

/** Records the key file that opened `setName`; a file that cannot be written is left as it was (the next start derives later). */
export function writeUnlockHint(file: string, setName: string, destination: unknown, input: KeyDerivationInput): void {
	const hints = readHintFile(file) ?? { v: 1, sets: {} };
	const entry = { destination: destinationHash(destination), salt: input.salt, N: input.N, r: input.r, p: input.p };
	if (JSON.stringify(hints.sets[setName]) === JSON.stringify(entry)) return;
	hints.sets[setName] = entry;
	const temporary = `${file}.${randomBytes(6).toString("hex")}.tmp`;
	try {
		writeFileSync(temporary, `${JSON.stringify(hints)}\n`, { mode: 0o600 });
		renameSync(temporary, file);
	} catch {
		// only a hint: without it scrypt starts once the key file is read
		rmSync(temporary, { force: true });
	}
}

function readHintFile(file: string): HintFile | undefined {
	try {
		const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<HintFile>;
		if (parsed?.v !== 1 || typeof parsed.sets !== "object" || parsed.sets === null) return undefined;
		return parsed as HintFile;
	} catch {
		return undefined;
	}
}

function destinationHash(destination: unknown): string {
	return sha256Hex(JSON.stringify(destination ?? null));
}

/**
 * Parameters worth deriving ahead: a key file's, up to 64 MiB of scrypt memory. Anything else (a
 * hand-edited hint, an unusually costly key file) starts nothing, and derives when read.
 */
function isDerivationInput(value: Partial<KeyDerivationInput>): value is KeyDerivationInput {
	const { salt, N, r, p } = value;
	if (typeof salt !== "string" || salt.length === 0) return false;
	if (!Number.isSafeInteger(N) || !Number.isSafeInteger(r) || !Number.isSafeInteger(p)) return false;
	const [n, blocks, lanes] = [N as number, r as number, p as number];
	return n > 1 && (n & (n - 1)) === 0 && blocks >= 1 && lanes >= 1 && lanes <= 4 && n * blocks <= 2 ** 19;
}
