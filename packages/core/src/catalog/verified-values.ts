// Catalog values this process has verified, so a value read again unchanged is not verified and parsed again at every run.

/** Characters and bytes of stored values kept for comparison by default, beyond which new values are verified every time. */
export const REMEMBERED_BYTES = 16 * 1024 * 1024;

/** A value as the store gave it, in whichever form it keeps values: text (MAC and JSON or base64) or bytes. */
type Stored = string | Uint8Array;

interface Known<T> {
	readonly mac: Stored;
	readonly body: Stored;
	readonly value: T;
	/** The shape check the value passed (a text value): another check is another question. */
	readonly valid: unknown;
	readonly size: number;
}

/**
 * Values that verified, each with the MAC and body it verified from. The same MAC over the same
 * body under the same key verifies the same way, so comparing the stored bytes stands in for
 * the HMAC, the parse and the shape check; anything else stored under the key (changed, forged,
 * dropped and written again) is verified as the first time. Values handed out again are the
 * same objects: they are frozen, so no reader can change what the next one gets.
 */
export class VerifiedValues {
	readonly #known = new Map<string, Known<unknown>>();
	#size = 0;

	constructor(private readonly budget = REMEMBERED_BYTES) {}

	/** The value verified before from exactly this MAC and body under `key`, checked by `valid`. */
	get<T>(key: string, mac: Stored, body: Stored, valid?: unknown): T | undefined {
		const known = this.#known.get(key);
		if (!known || known.valid !== valid || !same(known.mac, mac) || !same(known.body, body)) return undefined;
		return known.value as T;
	}

	/** Remembers a value that just verified; returns it (frozen). */
	remember<T>(key: string, mac: Stored, body: Stored, value: T, valid?: unknown): T {
		this.forget(key);
		const size = mac.length + body.length + (ArrayBuffer.isView(value) && (value as unknown) !== body ? value.byteLength : 0);
		if (this.#size + size > this.budget) return value;
		deepFreeze(value);
		this.#known.set(key, { mac, body, value, valid, size });
		this.#size += size;
		return value;
	}

	forget(key: string): void {
		const known = this.#known.get(key);
		if (!known) return;
		this.#known.delete(key);
		this.#size -= known.size;
	}
}

function same(a: Stored, b: Stored): boolean {
	if (typeof a === "string" || typeof b === "string") return a === b;
	return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Freezes a parsed JSON value throughout (byte values are handed out as they are: views are read, never written). */
function deepFreeze(value: unknown): void {
	if (typeof value !== "object" || value === null || ArrayBuffer.isView(value) || Object.isFrozen(value)) return;
	Object.freeze(value);
	for (const child of Object.values(value)) deepFreeze(child);
}
