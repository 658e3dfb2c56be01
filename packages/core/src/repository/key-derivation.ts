import { scrypt } from "node:crypto";

// The password's key, alone in a module of its own: the CLI starts it before it loads the rest
// of the core (`@holdfast/core/key-derivation`), and what it starts must be this very derivation.

export interface ScryptParams {
	readonly N: number;
	readonly r: number;
	readonly p: number;
}

/** ~0.1 s and 32 MiB on this class of machine: slow for a guesser, quick for a user. */
export const DEFAULT_SCRYPT: ScryptParams = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

export function deriveKey(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
	return new Promise((resolve, reject) =>
		scrypt(password.normalize("NFC"), salt, 32, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (error, key) =>
			error ? reject(error) : resolve(key),
		),
	);
}

/** What a key file's derivation depends on besides the password; public, as in the key file itself. */
export interface KeyDerivationInput extends ScryptParams {
	/** base64, as the key file writes it. */
	readonly salt: string;
}
