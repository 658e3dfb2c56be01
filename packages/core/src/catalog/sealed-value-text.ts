import type Keyv from "keyv";
import { CATALOG_VALUE_TAG, type SealedValue } from "./catalog-cache.js";

/** How keyv hands a value to its serializer and takes it back. */
type Entry = { value?: unknown; expires?: number | null };

/** Where a row of the one-encoding layout starts: keyv's own JSON rows start with "{". */
const HEAD = `${CATALOG_VALUE_TAG}\n`;

/**
 * A sealed value's row as text, written once: `hf-cache/1\n<expires>\n<mac>\n<json>`. Keyv's
 * JSON around the sealed value escaped its JSON a second time (every quote) and parsed it
 * twice on the way back, about a sixth of a simulation's CPU.
 *
 * Decision for catalogs written before: rows in keyv's JSON (any row not starting with the
 * head) are still read through keyv's own parser, so an existing catalog.sqlite keeps its
 * cache; an older holdfast reading a row of this layout fails to parse it, which is a miss
 * (`missesOnGarbage`), and it reads the repository again.
 */
export function writeSealedValuesOnce(catalog: Keyv): Keyv {
	const serialize = catalog.serialize;
	const deserialize = catalog.deserialize;
	if (!serialize || !deserialize) return catalog;
	catalog.serialize = ((data: Entry) => {
		const sealed = sealedOf(data.value);
		if (!sealed) return serialize(data as unknown as Parameters<typeof serialize>[0]);
		return `${HEAD}${typeof data.expires === "number" ? data.expires : ""}\n${sealed.m}\n${sealed.j}`;
	}) as unknown as Keyv["serialize"];
	catalog.deserialize = ((data: string) => {
		if (typeof data !== "string" || !data.startsWith(HEAD)) return deserialize(data) as Entry | undefined;
		const expiresEnd = data.indexOf("\n", HEAD.length);
		const macEnd = expiresEnd < 0 ? -1 : data.indexOf("\n", expiresEnd + 1);
		// A truncated row: a miss, like any row that does not parse.
		if (macEnd < 0) return undefined;
		const expires = data.slice(HEAD.length, expiresEnd);
		const value: SealedValue = { t: CATALOG_VALUE_TAG, m: data.slice(expiresEnd + 1, macEnd), j: data.slice(macEnd + 1) };
		return { value, expires: expires === "" ? undefined : Number(expires) } satisfies Entry;
	}) as unknown as Keyv["deserialize"];
	return catalog;
}

/** The value when it is exactly what `CatalogCache.seal` makes (no other field that the short row would lose). */
function sealedOf(value: unknown): SealedValue | undefined {
	if (typeof value !== "object" || value === null) return undefined;
	const { t, m, j } = value as Partial<SealedValue>;
	if (t !== CATALOG_VALUE_TAG || typeof m !== "string" || typeof j !== "string") return undefined;
	if (Object.keys(value).length !== 3 || m.includes("\n")) return undefined;
	return value as SealedValue;
}
