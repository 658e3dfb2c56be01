import { deriveKey, type KeyDerivationInput } from "./key-derivation.js";

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
		if (this.#started.has(derivationKey(password, input))) return;
		this.adopt(password, input, deriveKey(password, Buffer.from(input.salt, "base64"), input));
	}

	/** Takes in a derivation started elsewhere, with `deriveKey` itself, from `password` and `input`. */
	adopt(password: string, input: KeyDerivationInput, deriving: Promise<Buffer>): void {
		// A derivation nobody takes must not fail the command.
		deriving.catch(() => undefined);
		this.#started.set(derivationKey(password, input), deriving);
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
