import { isAbsolute, resolve } from "node:path";
import Keyv from "keyv";
import { HoldfastError } from "../host/errors.js";
import { writeSealedValuesOnce } from "./sealed-value-text.js";
import { type CatalogDamageReport, SqliteKeyvStore } from "./sqlite-store.js";

/**
 * The catalog is a cache of what the repository already says (file states of the last run,
 * the loaded index). Losing it costs time, never correctness: a damaged file is set aside
 * and rebuilt, a value that does not parse is a miss, and what the repository caches is
 * sealed with a key of its own (see `CatalogCache`).
 */
export type Catalog = Keyv;

export const DEFAULT_CATALOG_URI = "sqlite://./.holdfast/catalog.sqlite";

/** Stores other than SQLite and memory come from their keyv adapter package, if installed. */
const ADAPTERS: Record<string, string> = {
	redis: "@keyv/redis",
	rediss: "@keyv/redis",
	postgres: "@keyv/postgres",
	postgresql: "@keyv/postgres",
	mysql: "@keyv/mysql",
	mongodb: "@keyv/mongo",
};

export interface CatalogOptions {
	/** Told (once) that a damaged catalog file was set aside and a fresh one started. */
	readonly onDamage?: CatalogDamageReport;
}

/** The file of a SQLite catalog (where files of local state can sit beside it); undefined for any other store. */
export function catalogFile(uri: string, baseDir: string): string | undefined {
	if (!/^sqlite:\/\//i.test(uri)) return undefined;
	const raw = uri.slice("sqlite://".length);
	return raw === ":memory:" ? undefined : isAbsolute(raw) ? raw : resolve(baseDir, raw);
}

export async function openCatalog(
	uri: string,
	baseDir: string,
	namespace = "holdfast",
	options: CatalogOptions = {},
): Promise<Catalog> {
	const scheme = uri.slice(0, Math.max(0, uri.indexOf(":"))).toLowerCase();
	if (scheme === "memory") return asCatalog(new Keyv({ namespace }));
	if (scheme === "sqlite") {
		const raw = uri.slice("sqlite://".length);
		const path = raw === ":memory:" ? raw : isAbsolute(raw) ? raw : resolve(baseDir, raw);
		try {
			return asCatalog(new Keyv({ store: new SqliteKeyvStore(path, options.onDamage), namespace }));
		} catch (cause) {
			throw new HoldfastError("CONFIG_INVALID", `catalog: cannot open ${path}: ${(cause as Error).message}`, { cause });
		}
	}
	const adapter = ADAPTERS[scheme];
	if (!adapter) throw new HoldfastError("CONFIG_INVALID", `catalog: unsupported store URI scheme "${scheme}" in ${uri}`);
	let mod: { default: new (uri: string) => unknown };
	try {
		mod = (await import(adapter)) as { default: new (uri: string) => unknown };
	} catch (cause) {
		throw new HoldfastError("CONFIG_INVALID", `catalog: ${uri} needs the package ${adapter} (npm install ${adapter})`, {
			cause,
		});
	}
	return asCatalog(new Keyv({ store: new mod.default(uri), namespace }));
}

/**
 * Opens a SQLite catalog's file now rather than at its first statement, for a caller with time
 * to spare (waiting on scrypt). A file that cannot be opened fails its first statement as before.
 */
export function openCatalogEarly(catalog: Catalog | undefined): void {
	const store: unknown = catalog?.store;
	if (!(store instanceof SqliteKeyvStore)) return;
	try {
		store.open();
	} catch {
		// reported, as CONFIG_INVALID, by the statement that needs the file
	}
}

/** Any store's Keyv as the catalog: sealed values written once, and garbage read as a miss. */
function asCatalog(keyv: Keyv): Keyv {
	return missesOnGarbage(writeSealedValuesOnce(keyv));
}

/** A stored value that no longer parses is a cache miss, not an error that stops the command. */
function missesOnGarbage(catalog: Keyv): Keyv {
	const parse = catalog.deserialize;
	if (parse) {
		catalog.deserialize = async (data) => {
			try {
				return await parse(data);
			} catch {
				return undefined;
			}
		};
	}
	return catalog;
}
