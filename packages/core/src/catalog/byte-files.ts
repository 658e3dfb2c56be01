import { createHash, randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeFoldersSync } from "../host/folders.js";

// Byte values of a SQLite catalog as files beside it: hundreds of MB of packed index blobs cost SQLite twice the writes (WAL, then the file).

/** Bytes of the MAC in front of each value. */
const MAC_BYTES = 32;

/**
 * Byte values and their MACs, one file each (the MAC, then the value) in a folder per
 * namespace, named by a hash of the key; in a Map when the catalog is in memory. A file is
 * written under a temporary name and renamed, so a reader sees a whole value or none. The
 * values are sealed by the caller: a file that is damaged, cut short or not ours does not verify.
 */
export class ByteFiles {
	readonly #memory = new Map<string, { mac: Buffer; value: Buffer }>();

	/** `dir` undefined keeps the values in memory. */
	constructor(private readonly dir: string | undefined) {}

	get(namespace: string | undefined, key: string): { mac: Buffer; value: Buffer } | undefined {
		if (!this.dir) return this.#memory.get(key);
		let bytes: Buffer;
		try {
			bytes = readFileSync(this.#path(namespace, key));
		} catch {
			return undefined;
		}
		if (bytes.length < MAC_BYTES) return undefined;
		return { mac: bytes.subarray(0, MAC_BYTES), value: bytes.subarray(MAC_BYTES) };
	}

	/** Stores a value; a cache that cannot be written is left as it was (the value is read again next time). */
	set(namespace: string | undefined, key: string, mac: Uint8Array, value: Uint8Array): void {
		if (mac.length !== MAC_BYTES) throw new Error(`internal: a catalog MAC is ${MAC_BYTES} bytes, not ${mac.length}`);
		if (!this.dir) {
			this.#memory.set(key, { mac: Buffer.from(mac), value: Buffer.from(value) });
			return;
		}
		const path = this.#path(namespace, key);
		const temporary = `${path}.${randomBytes(6).toString("hex")}.tmp`;
		try {
			makeFoldersSync(this.#folder(namespace));
			writeFileSync(temporary, mac);
			writeFileSync(temporary, value, { flag: "a" });
			renameSync(temporary, path);
		} catch {
			rmSync(temporary, { force: true });
		}
	}

	delete(namespace: string | undefined, key: string): boolean {
		if (!this.dir) return this.#memory.delete(key);
		try {
			unlinkSync(this.#path(namespace, key));
			return true;
		} catch {
			return false;
		}
	}

	/** Drops every value of a namespace. */
	clear(namespace: string | undefined): void {
		if (!this.dir) {
			for (const key of this.#memory.keys()) if (!namespace || key.startsWith(`${namespace}:`)) this.#memory.delete(key);
		} else rmSync(this.#folder(namespace), { recursive: true, force: true });
	}

	#folder(namespace: string | undefined): string {
		// Namespaces are plain names in practice; any other is hashed rather than trusted in a path.
		const name = namespace && /^[A-Za-z0-9_-]+$/.test(namespace) ? namespace : `_${hash(namespace ?? "")}`;
		return join(this.dir as string, name);
	}

	#path(namespace: string | undefined, key: string): string {
		return join(this.#folder(namespace), hash(key));
	}
}

function hash(text: string): string {
	return createHash("sha256").update(text).digest("hex");
}
