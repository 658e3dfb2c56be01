import { createHmac, timingSafeEqual } from "node:crypto";
import { isHoldfastError } from "../host/errors.js";
import { packText, unpackText } from "../repository/compression.js";
import type { Catalog } from "./catalog.js";
import { REMEMBERED_BYTES, VerifiedValues } from "./verified-values.js";

/** The layout of a sealed value; a value under another tag (an older layout) is a plain miss. */
export const CATALOG_VALUE_TAG = "hf-cache/1";

/** The layout of a sealed value kept as bytes (an index object's packed blobs). */
export const CATALOG_BYTES_TAG = "hf-cache-bytes/1";

/**
 * The layout of a sealed value kept compressed (a cached tree): zstd of its JSON, in base64.
 * An older holdfast takes it for a value of another layout, a miss, and reads the tree again.
 */
export const CATALOG_PACKED_TAG = "hf-cache-z/1";

/** A store that keeps byte values beside its text ones (the SQLite catalog); other stores carry them in base64. */
export interface BytesStore {
	getBytes(key: string): Promise<{ mac: Uint8Array; value: Uint8Array } | undefined>;
	setBytes(key: string, mac: Uint8Array, value: Uint8Array): Promise<void>;
}

/** A store that lists its keys by prefix without reading values (the SQLite catalog). */
interface KeyListingStore {
	keysStartingWith(prefix: string): Promise<string[]>;
}

/** What a store without a bytes table holds for a byte value. */
interface SealedBytesText {
	t: typeof CATALOG_BYTES_TAG;
	m: string;
	b: string;
}

/** What the catalog holds for one key: the value's JSON and a MAC binding it to the key and the repository. */
export interface SealedValue {
	t: typeof CATALOG_VALUE_TAG;
	m: string;
	j: string;
}

/** What the catalog holds for a value kept compressed: the MAC is over the base64 text, checked before it is unpacked. */
export interface SealedPackedValue {
	t: typeof CATALOG_PACKED_TAG;
	m: string;
	z: string;
}

/** `remember`: the value is read again at every run (index heads, snapshots); an unchanged one is handed out again, frozen, not verified again (`VerifiedValues`). */
export interface ReadOptions {
	readonly remember?: boolean;
}

/**
 * A repository's view of the catalog: every value is sealed with an HMAC under a key derived
 * from the repository's master key, over the tag, the catalog key and the JSON. A value that
 * was damaged on disk, moved to another key, or written for another repository whose
 * catalog reused this path does not verify and counts as never cached, so the caller reads
 * the destination (or the file) again.
 */
export class CatalogCache {
	#warned = false;
	/** Values kept apart from bytes: an index's packed blobs would crowd out the heads and snapshots read at every run. */
	readonly #verified = new VerifiedValues();
	readonly #verifiedBytes = new VerifiedValues(2 * REMEMBERED_BYTES);

	constructor(
		private readonly catalog: Catalog,
		private readonly macKey: Buffer,
		/** Told once, at the first value that carried our tag but did not verify. */
		private readonly onDamage: (key: string) => void = () => undefined,
	) {}

	seal(key: string, value: unknown): SealedValue {
		const j = JSON.stringify(value);
		return { t: CATALOG_VALUE_TAG, m: this.#mac(key, j), j };
	}

	/**
	 * A value whose JSON is already serialized (a tree as it is stored), sealed as it is, not
	 * stringified again: kept compressed where zstd shrinks it, which a tree's JSON it does to
	 * about a quarter.
	 */
	sealJson(key: string, json: Uint8Array): SealedValue | SealedPackedValue {
		const packed = packText(json);
		if (packed) {
			const z = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength).toString("base64");
			return { t: CATALOG_PACKED_TAG, m: this.#mac(key, z, CATALOG_PACKED_TAG), z };
		}
		const j = Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString("utf8");
		return { t: CATALOG_VALUE_TAG, m: this.#mac(key, j), j };
	}

	/** The verified value, or undefined when absent, from an older layout, damaged, or not ours. */
	open<T>(key: string, stored: unknown, valid: (value: unknown) => value is T, options: ReadOptions = {}): T | undefined {
		if (typeof stored !== "object" || stored === null) return undefined;
		const { t, m, j, z } = stored as Partial<SealedValue & SealedPackedValue>;
		const tag = t === CATALOG_VALUE_TAG || t === CATALOG_PACKED_TAG ? t : undefined;
		if (tag === undefined) return undefined;
		const text = tag === CATALOG_VALUE_TAG ? j : z;
		if (typeof m !== "string" || typeof text !== "string") return this.#damaged(key);
		if (options.remember) {
			const known = this.#verified.get<T>(key, m, text, valid);
			if (known !== undefined) return known;
		}
		if (!this.#verifies(key, text, m, tag)) return this.#damaged(key);
		let value: unknown;
		try {
			value = JSON.parse(tag === CATALOG_VALUE_TAG ? text : unpackText(Buffer.from(text, "base64"), key).toString("utf8"));
		} catch (error) {
			// A value that verified and that this installation cannot unpack (no zstd) is a plain miss.
			return isHoldfastError(error, "PLUGIN_LOAD") ? undefined : this.#damaged(key);
		}
		if (!valid(value)) return this.#damaged(key);
		return options.remember ? this.#verified.remember(key, m, text, value, valid) : value;
	}

	async get<T>(key: string, valid: (value: unknown) => value is T, options?: ReadOptions): Promise<T | undefined> {
		return this.open(key, await this.catalog.get(key), valid, options);
	}

	/** Several values in one round trip to the store, each verified as `get` would. */
	async getMany<T>(keys: readonly string[], valid: (value: unknown) => value is T): Promise<(T | undefined)[]> {
		if (keys.length === 0) return [];
		const stored = (await this.catalog.getMany([...keys])) as unknown[];
		return keys.map((key, i) => this.open(key, stored[i], valid));
	}

	async set(key: string, value: unknown): Promise<void> {
		this.#verified.forget(key);
		await this.catalog.set(key, this.seal(key, value));
	}

	async setMany(entries: readonly { key: string; value: unknown }[]): Promise<void> {
		await this.catalog.setMany(entries.map(({ key, value }) => ({ key, value: this.seal(key, value) })));
	}

	/** Drops values (text or bytes): the next read misses and goes to the destination again. */
	async delete(keys: readonly string[]): Promise<void> {
		for (const key of keys) {
			this.#verified.forget(key);
			this.#verifiedBytes.forget(key);
		}
		if (keys.length > 0) await this.catalog.deleteMany([...keys]);
	}

	/**
	 * Catalog keys starting with `prefix`, from a store that lists keys without reading values
	 * (SQLite, memory); undefined from any other. Text values only: a SQLite catalog's byte values are files named by a hash.
	 */
	async keysStartingWith(prefix: string): Promise<string[] | undefined> {
		const store = this.catalog.store as Partial<KeyListingStore> | Map<string, unknown> | undefined;
		const full = this.#storeKey(prefix);
		let keys: string[];
		if (store instanceof Map) {
			// One pass over the keys, without an array of them all: a backup asks at every run.
			keys = [];
			for (const key of store.keys()) if (key.startsWith(full)) keys.push(key);
		} else if (typeof store?.keysStartingWith === "function") keys = await store.keysStartingWith(full);
		else return undefined;
		return keys.map((key) => key.slice(full.length - prefix.length));
	}

	/** A byte value, sealed like the others over the tag, the key and the bytes. */
	async setBytes(key: string, value: Uint8Array): Promise<void> {
		this.#verifiedBytes.forget(key);
		const mac = this.#macBytes(key, value);
		const store = bytesStoreOf(this.catalog);
		if (store) await store.setBytes(this.#storeKey(key), mac, value);
		else {
			const text: SealedBytesText = {
				t: CATALOG_BYTES_TAG,
				m: mac.toString("base64"),
				b: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"),
			};
			await this.catalog.set(key, text);
		}
	}

	/** The verified byte value, or undefined when absent, damaged, or not ours. */
	async getBytes(key: string, options: ReadOptions = {}): Promise<Uint8Array | undefined> {
		const store = bytesStoreOf(this.catalog);
		// What the store holds, as it holds it: compared with what verified before, when asked to remember.
		let stored: { mac: string | Uint8Array; body: string | Uint8Array } | undefined;
		let found: { mac: Uint8Array; value: Uint8Array } | undefined;
		if (store) {
			found = await store.getBytes(this.#storeKey(key));
			if (!found) return undefined;
			stored = { mac: found.mac, body: found.value };
		} else {
			const text = (await this.catalog.get(key)) as Partial<SealedBytesText> | undefined;
			if (typeof text !== "object" || text === null || text.t !== CATALOG_BYTES_TAG) return undefined;
			if (typeof text.m !== "string" || typeof text.b !== "string") return this.#damaged(key);
			stored = { mac: text.m, body: text.b };
		}
		if (options.remember) {
			const known = this.#verifiedBytes.get<Uint8Array>(key, stored.mac, stored.body);
			if (known) return known;
		}
		found ??= { mac: Buffer.from(stored.mac as string, "base64"), value: Buffer.from(stored.body as string, "base64") };
		const want = this.#macBytes(key, found.value);
		const got = found.mac;
		if (got.length !== want.length || !timingSafeEqual(got, want)) return this.#damaged(key);
		return options.remember ? this.#verifiedBytes.remember(key, stored.mac, stored.body, found.value) : found.value;
	}

	/** Values `sealJson` sealed, written in one call. */
	async setManySealed(entries: readonly { key: string; value: SealedValue | SealedPackedValue }[]): Promise<void> {
		await this.catalog.setMany([...entries]);
	}

	#mac(key: string, text: string, tag: typeof CATALOG_VALUE_TAG | typeof CATALOG_PACKED_TAG = CATALOG_VALUE_TAG): string {
		return createHmac("sha256", this.macKey).update(`${tag}\0${key}\0`).update(text).digest("base64");
	}

	#macBytes(key: string, value: Uint8Array): Buffer {
		return createHmac("sha256", this.macKey).update(`${CATALOG_BYTES_TAG}\0${key}\0`).update(value).digest();
	}

	/** The key as the store sees it: Keyv adds the namespace to the keys it passes on. */
	#storeKey(key: string): string {
		const namespace = this.catalog.namespace;
		return namespace ? `${namespace}:${key}` : key;
	}

	#verifies(key: string, text: string, mac: string, tag: typeof CATALOG_VALUE_TAG | typeof CATALOG_PACKED_TAG): boolean {
		const want = Buffer.from(this.#mac(key, text, tag), "base64");
		const got = Buffer.from(mac, "base64");
		return got.length === want.length && timingSafeEqual(got, want);
	}

	#damaged(key: string): undefined {
		if (!this.#warned) {
			this.#warned = true;
			this.onDamage(key);
		}
		return undefined;
	}
}

function bytesStoreOf(catalog: Catalog): BytesStore | undefined {
	const store = catalog.store as Partial<BytesStore> | undefined;
	return typeof store?.getBytes === "function" && typeof store.setBytes === "function" ? (store as BytesStore) : undefined;
}

/** Where the catalog keeps a tree of a repository, parsed: read by `loadTree`, written by the backup that stores it. */
export function treeCacheKey(repositoryId: string, treeId: string): string {
	return `tree:${repositoryId}:${treeId}`;
}

/** A plain JSON object: the least a cached record must be before its own checks run. */
export function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}
