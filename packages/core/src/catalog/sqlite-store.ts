import { EventEmitter } from "node:events";
import { accessSync, closeSync, constants, existsSync, openSync, readSync, renameSync, type Stats, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname } from "node:path";
import type Database from "better-sqlite3";
import { HoldfastError } from "../host/errors.js";
import { makeFoldersSync } from "../host/folders.js";
import { ByteFiles } from "./byte-files.js";

/** Told once when a damaged catalog file was set aside: the line says what and where. */
export type CatalogDamageReport = (line: string) => void;

/** SQLite's answers that mean "this file is no usable catalog", as opposed to "another process holds it". */
const DAMAGE = /^SQLITE_(CORRUPT|NOTADB|IOERR|CANTOPEN|FORMAT|PERM|READONLY|RANGE|MISMATCH|EMPTY)/;

/** At open, any SQLite failure but contention counts as damage: a file we cannot set up is no cache of ours. */
const CONTENTION = /^SQLITE_(BUSY|LOCKED)/;

/** Keys looked up by one statement (passed as one JSON array). */
const GET_MANY = 1000;

/** better-sqlite3's native module, loaded by the first catalog opened: a command that never reads the catalog never pays for it. */
let sqlite: typeof Database | undefined;
/** Why it did not load, the first time: Node answers a second try with "did not self-register", which hides the cause. */
let sqliteFailure: HoldfastError | undefined;

function loadSqlite(): typeof Database {
	if (sqliteFailure) throw sqliteFailure;
	try {
		sqlite ??= createRequire(import.meta.url)("better-sqlite3") as typeof Database;
		return sqlite;
	} catch (cause) {
		// Built for another Node (installed under one, run under another) or not built at all: the
		// installation's fault, not the catalog file's. Node says why over several lines, then what
		// to do in its own terms: here one line, the cause, and holdfast's remedy.
		const why = ((cause as Error).message ?? String(cause)).replace(/\s+/g, " ").replace(/ Please try .*$/, "");
		sqliteFailure = new HoldfastError(
			"PLUGIN_LOAD",
			`the catalog's SQLite module (better-sqlite3) does not load on Node ${process.version} (${why}): reinstall holdfast on this machine under this Node (npm ci builds it)`,
			{ cause },
		);
		throw sqliteFailure;
	}
}

type Statements = {
	db: Database.Database;
	get: Database.Statement<[string], { value: string; expires: number | null }>;
	getMany: Database.Statement<[string], { key: string; value: string; expires: number | null }>;
	set: Database.Statement<[string, string, number | null]>;
	delete: Database.Statement<[string]>;
	/** The other statements, each prepared once, by its SQL. */
	others: Map<string, Database.Statement>;
};

/**
 * Every database and statement better-sqlite3 made, held until the process ends. Version 12
 * wraps them in Node's ObjectWrap, whose destructor on Node 24 asks for the current
 * environment; V8 collecting one where none is entered (during a microtask checkpoint) made
 * Node abort a backup of a few thousand files (exit 134; WiseLibs/better-sqlite3#1515, closed
 * unfixed; version 13 fixes it, but needs Node 22). Never collected, they are never destroyed
 * mid-run. A command opens a catalog or two, each with a few statements prepared once.
 */
const KEPT = new Set<object>();

function kept<T extends object>(made: T): T {
	KEPT.add(made);
	return made;
}

/** `sql` prepared on `s`'s database once, then reused. */
function statement(s: Statements, sql: string): Database.Statement {
	let prepared = s.others.get(sql);
	if (!prepared) {
		prepared = kept(s.db.prepare(sql));
		s.others.set(sql, prepared);
	}
	return prepared;
}

/**
 * A keyv store on SQLite through better-sqlite3, which builds from the npm registry's
 * source on Node 20 (the `@keyv/sqlite` adapter needs `sqlite3`, whose install downloads
 * binaries). Synchronous statements behind keyv's async API keep a backup's many
 * small catalog reads cheap.
 *
 * The catalog is a cache, so a damaged file never stops a command: it is renamed aside
 * (`<name>.damaged-<time>`, kept for the user to look at), a fresh one takes its place, and
 * what was cached is read again from the destination.
 *
 * The file is opened at the first statement, not when the store is made: a command starts
 * (and unlocks the repository) without loading SQLite, and one that never reads the catalog
 * never opens it.
 */
export class SqliteKeyvStore extends EventEmitter {
	readonly opts: { dialect: "sqlite"; path: string };
	namespace?: string | undefined;
	#opened: Statements | undefined;
	#reported = false;
	readonly #onDamage: CatalogDamageReport;
	/** Byte values, in files beside the database (`<file>.values/`). */
	readonly #bytes: ByteFiles;

	constructor(path: string, onDamage: CatalogDamageReport = () => undefined) {
		super();
		// The folder now (a path that cannot be one fails at once); the file at the first statement.
		if (path !== ":memory:") makeFoldersSync(dirname(path));
		this.opts = { dialect: "sqlite", path };
		this.#onDamage = onDamage;
		this.#bytes = new ByteFiles(path === ":memory:" ? undefined : `${path}.values`);
	}

	/** Whether a statement has opened the file yet. */
	get isOpen(): boolean {
		return this.#opened !== undefined;
	}

	/** Opens the file now (the first statement would): for a caller that has a moment to spare before it needs the catalog. */
	open(): void {
		void this.#s;
	}

	get #s(): Statements {
		this.#opened ??= this.#openOrReplace();
		return this.#opened;
	}

	set #s(statements: Statements) {
		this.#opened = statements;
	}

	#openOrReplace(): Statements {
		const path = this.opts.path;
		try {
			return openStatements(path);
		} catch (error) {
			if (error instanceof HoldfastError && error.code === "PLUGIN_LOAD") throw error;
			const code = codeOf(error);
			if (!code.startsWith("SQLITE_") || CONTENTION.test(code)) {
				throw new HoldfastError("CONFIG_INVALID", `catalog: cannot open ${path}: ${(error as Error).message}`, {
					cause: error,
				});
			}
			// Only a catalog is ever set aside: a path that names someone's file or folder is a config mistake.
			const foreign = notOurs(path);
			if (foreign)
				throw new HoldfastError("CONFIG_INVALID", `catalog: ${path} ${foreign}; nothing was changed`, { cause: error });
			if (!writable(path))
				return this.#inMemory(
					`catalog ${path} cannot be written by this user (${(error as Error).message}); this run keeps the catalog in memory and reads everything from the destination`,
				);
			return this.#replace(error);
		}
	}

	/** A catalog in memory for this run, said once: the file is left as it is. */
	#inMemory(line: string): Statements {
		if (!this.#reported) {
			this.#reported = true;
			this.#onDamage(line);
		}
		return openStatements(":memory:");
	}

	/** Sets the damaged file aside and opens a fresh one; in memory when not even that works. */
	#replace(cause: unknown): Statements {
		const path = this.opts.path;
		let aside: string | undefined;
		let fresh: Statements | undefined;
		if (path !== ":memory:") {
			try {
				aside = setAside(path);
				fresh = openStatements(path);
			} catch {
				fresh = undefined;
			}
		}
		const reason = (cause as Error).message?.split("\n")[0] ?? String(cause);
		if (!this.#reported) {
			this.#reported = true;
			this.#onDamage(
				fresh
					? `catalog ${path} is damaged (${reason}); it is only a cache: kept aside as ${basename(aside ?? "")} and rebuilt from the destination`
					: `catalog ${path} is damaged (${reason}) and could not be replaced; it is only a cache: this run keeps it in memory and reads everything from the destination`,
			);
		}
		return fresh ?? openStatements(":memory:");
	}

	/** Runs one statement; damage found mid-run replaces the file, then `onDamage` answers on the fresh one. */
	#guard<T>(run: (s: Statements) => T, onDamage: (s: Statements) => T): T {
		try {
			return run(this.#s);
		} catch (error) {
			if (!DAMAGE.test(codeOf(error))) throw error;
			try {
				this.#s.db.close();
			} catch {
				// a damaged file may fail to close; it is set aside either way
			}
			this.#s = this.#replace(error);
			return onDamage(this.#s);
		}
	}

	async get(key: string): Promise<string | undefined> {
		return this.#guard(
			(s) => {
				const row = s.get.get(key);
				if (!row) return undefined;
				if (row.expires !== null && row.expires < Date.now()) {
					s.delete.run(key);
					return undefined;
				}
				return row.value;
			},
			() => undefined,
		);
	}

	/** One statement for a whole batch: a backup looks up the states of a folder's files at once, not one call each. */
	async getMany(keys: string[]): Promise<(string | undefined)[]> {
		const found = this.#guard(
			(s) => {
				const rows = new Map<string, { value: string; expires: number | null }>();
				for (let at = 0; at < keys.length; at += GET_MANY) {
					for (const row of s.getMany.all(JSON.stringify(keys.slice(at, at + GET_MANY)))) rows.set(row.key, row);
				}
				return rows;
			},
			() => new Map<string, { value: string; expires: number | null }>(),
		);
		const now = Date.now();
		return keys.map((key) => {
			const row = found.get(key);
			if (!row) return undefined;
			if (row.expires !== null && row.expires < now) {
				this.#guard(
					(s) => s.delete.run(key),
					() => undefined,
				);
				return undefined;
			}
			return row.value;
		});
	}

	async set(key: string, value: string, ttl?: number): Promise<boolean> {
		const write = (s: Statements) => {
			s.set.run(key, value, typeof ttl === "number" ? Date.now() + ttl : null);
			return true;
		};
		return this.#guard(write, write);
	}

	/** One transaction for a whole batch: a backup's file states are one commit, not thousands. */
	async setMany(entries: { key: string; value: string; ttl?: number }[]): Promise<void> {
		const write = (s: Statements) =>
			s.db.transaction(() => {
				for (const { key, value, ttl } of entries) s.set.run(key, value, typeof ttl === "number" ? Date.now() + ttl : null);
			})();
		this.#guard(write, write);
	}

	/** A byte value and its MAC: no JSON or base64 on the way in or out. */
	async getBytes(key: string): Promise<{ mac: Buffer; value: Buffer } | undefined> {
		return this.#bytes.get(this.namespace, key);
	}

	/** Stores a byte value; a text value under the same key (an older layout) goes, so the catalog keeps one copy. */
	async setBytes(key: string, mac: Uint8Array, value: Uint8Array): Promise<void> {
		this.#bytes.set(this.namespace, key, mac, value);
		this.#guard(
			(s) => s.delete.run(key),
			() => undefined,
		);
	}

	async delete(key: string): Promise<boolean> {
		return this.#guard(
			(s) => {
				const text = s.delete.run(key).changes > 0;
				return this.#bytes.delete(this.namespace, key) || text;
			},
			() => false,
		);
	}

	/** One transaction for a whole batch: the index load drops every value of the index objects grooming deleted at once. */
	async deleteMany(keys: string[]): Promise<boolean> {
		return this.#guard(
			(s) => {
				let deleted = false;
				s.db.transaction(() => {
					for (const key of keys) deleted = s.delete.run(key).changes > 0 || deleted;
				})();
				for (const key of keys) deleted = this.#bytes.delete(this.namespace, key) || deleted;
				return deleted;
			},
			() => false,
		);
	}

	async has(key: string): Promise<boolean> {
		return (await this.get(key)) !== undefined;
	}

	async clear(): Promise<void> {
		this.#guard(
			(s) => {
				if (this.namespace) {
					statement(s, "DELETE FROM keyv WHERE key LIKE ? ESCAPE '\\'").run(`${escapeLike(this.namespace)}:%`);
				} else {
					s.db.exec("DELETE FROM keyv");
				}
				this.#bytes.clear(this.namespace);
			},
			() => undefined,
		);
	}

	/** Keys (not values) starting with `prefix`: a range of the primary key, so a large catalog is not read. */
	async keysStartingWith(prefix: string): Promise<string[]> {
		if (prefix === "") throw new Error("internal: a catalog key listing needs a prefix");
		// Every key starting with `prefix` sorts at or after it and before the prefix with its last character raised.
		const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
		return this.#guard(
			(s) =>
				(statement(s, "SELECT key FROM keyv WHERE key >= ? AND key < ?").all(prefix, end) as { key: string }[]).map(
					(row) => row.key,
				),
			() => [],
		);
	}

	async *iterator(namespace?: string): AsyncGenerator<[string, string]> {
		// Read whole before yielding: damage found halfway would otherwise leave a half-listed iteration.
		const rows = this.#guard(
			(s) =>
				(namespace
					? statement(s, "SELECT key, value FROM keyv WHERE key LIKE ? ESCAPE '\\'").all(`${escapeLike(namespace)}:%`)
					: statement(s, "SELECT key, value FROM keyv").all()) as { key: string; value: string }[],
			() => [],
		);
		for (const row of rows) yield [row.key, row.value];
	}

	async disconnect(): Promise<void> {
		// Never opened: nothing to close, and nothing to open for it.
		if (!this.#opened) return;
		try {
			this.#opened.db.close();
		} catch (error) {
			if (!DAMAGE.test(codeOf(error))) throw error;
		}
	}
}

function openStatements(path: string): Statements {
	const db = kept(new (loadSqlite())(path));
	try {
		// exec, not pragma(): pragma() prepares a statement of its own, to be collected.
		db.exec("PRAGMA journal_mode = WAL");
		db.exec("PRAGMA synchronous = NORMAL");
		db.exec("CREATE TABLE IF NOT EXISTS keyv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER)");
		// Reads the schema and the first pages now, so a file that is no database fails here rather than mid-run.
		kept(db.prepare("SELECT count(*) FROM (SELECT 1 FROM keyv LIMIT 1)")).get();
		return {
			db,
			get: kept(db.prepare("SELECT value, expires FROM keyv WHERE key = ?")),
			getMany: kept(db.prepare("SELECT key, value, expires FROM keyv WHERE key IN (SELECT value FROM json_each(?))")),
			set: kept(
				db.prepare(
					"INSERT INTO keyv (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
				),
			),
			delete: kept(db.prepare("DELETE FROM keyv WHERE key = ?")),
			others: new Map(),
		};
	} catch (error) {
		try {
			db.close();
		} catch {
			// closing a file that is no database may fail too; the open error is the one to report
		}
		throw error;
	}
}

/** Renames the file (and SQLite's `-wal`/`-shm` beside it) to `<name>.damaged-<time>`; never deletes. */
/**
 * Why `path` is not a catalog file to set aside, if it is not: a folder, or a file that neither
 * starts as a SQLite database nor has the files holdfast keeps beside its catalog (values,
 * unlock hints, SQLite's journal) — a user's own file the config named by mistake.
 */
function notOurs(path: string): string | undefined {
	let info: Stats;
	try {
		info = statSync(path);
	} catch {
		return undefined;
	}
	// What holdfast keeps beside a catalog of its own: whatever took the file's place, it was ours.
	if ([".values", ".unlock-hints.json", "-wal", "-shm"].some((suffix) => existsSync(path + suffix))) return undefined;
	if (info.isDirectory()) return "is a folder: name a file for the catalog (like .holdfast/catalog.sqlite)";
	if (!info.isFile()) return "is not a regular file: name a file for the catalog";
	if (info.size === 0) return undefined;
	const head = Buffer.alloc(SQLITE_HEADER.length);
	try {
		const fd = openSync(path, "r");
		try {
			readSync(fd, head, 0, head.length, 0);
		} finally {
			closeSync(fd);
		}
	} catch {
		return undefined;
	}
	return head.equals(SQLITE_HEADER) ? undefined : "is not a SQLite file, so not a holdfast catalog: name another path";
}

/** Whether this user may write the catalog file and its folder (the journal files go beside it). */
function writable(path: string): boolean {
	try {
		accessSync(dirname(path), constants.W_OK);
		if (existsSync(path)) accessSync(path, constants.R_OK | constants.W_OK);
		return true;
	} catch {
		return false;
	}
}

/** What every SQLite database file begins with. */
const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");

function setAside(path: string): string {
	const stamp = new Date()
		.toISOString()
		.replace(/[-:]/g, "")
		.replace(/\.\d+Z$/, "Z");
	let aside = `${path}.damaged-${stamp}`;
	for (let n = 2; existsSync(aside); n++) aside = `${path}.damaged-${stamp}-${n}`;
	for (const suffix of ["-wal", "-shm"]) {
		if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
	}
	if (existsSync(path)) renameSync(path, aside);
	return aside;
}

function codeOf(error: unknown): string {
	const code = (error as { code?: unknown } | null)?.code;
	return typeof code === "string" ? code : "";
}

function escapeLike(text: string): string {
	return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
