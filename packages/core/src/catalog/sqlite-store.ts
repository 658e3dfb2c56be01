import { EventEmitter } from "node:events";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/**
 * A keyv store on SQLite through better-sqlite3, which builds from the npm registry's
 * source on Node 20 (the `@keyv/sqlite` adapter needs `sqlite3`, whose install downloads
 * binaries). Synchronous statements behind keyv's async API keep a backup's many
 * small catalog reads cheap.
 */
export class SqliteKeyvStore extends EventEmitter {
	readonly opts: { dialect: "sqlite"; path: string };
	namespace?: string | undefined;
	readonly #db: Database.Database;
	readonly #get: Database.Statement<[string], { value: string; expires: number | null }>;
	readonly #set: Database.Statement<[string, string, number | null]>;
	readonly #delete: Database.Statement<[string]>;

	constructor(path: string) {
		super();
		if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
		this.opts = { dialect: "sqlite", path };
		this.#db = new Database(path);
		this.#db.pragma("journal_mode = WAL");
		this.#db.pragma("synchronous = NORMAL");
		this.#db.exec("CREATE TABLE IF NOT EXISTS keyv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER)");
		this.#get = this.#db.prepare("SELECT value, expires FROM keyv WHERE key = ?");
		this.#set = this.#db.prepare(
			"INSERT INTO keyv (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
		);
		this.#delete = this.#db.prepare("DELETE FROM keyv WHERE key = ?");
	}

	async get(key: string): Promise<string | undefined> {
		const row = this.#get.get(key);
		if (!row) return undefined;
		if (row.expires !== null && row.expires < Date.now()) {
			this.#delete.run(key);
			return undefined;
		}
		return row.value;
	}

	async getMany(keys: string[]): Promise<(string | undefined)[]> {
		return Promise.all(keys.map((key) => this.get(key)));
	}

	async set(key: string, value: string, ttl?: number): Promise<boolean> {
		this.#set.run(key, value, typeof ttl === "number" ? Date.now() + ttl : null);
		return true;
	}

	/** One transaction for a whole batch: a backup's file states are one commit, not thousands. */
	async setMany(entries: { key: string; value: string; ttl?: number }[]): Promise<void> {
		this.#db.transaction(() => {
			for (const { key, value, ttl } of entries) this.#set.run(key, value, typeof ttl === "number" ? Date.now() + ttl : null);
		})();
	}

	async delete(key: string): Promise<boolean> {
		return this.#delete.run(key).changes > 0;
	}

	async has(key: string): Promise<boolean> {
		return (await this.get(key)) !== undefined;
	}

	async clear(): Promise<void> {
		if (this.namespace) {
			this.#db.prepare("DELETE FROM keyv WHERE key LIKE ? ESCAPE '\\'").run(`${escapeLike(this.namespace)}:%`);
		} else {
			this.#db.exec("DELETE FROM keyv");
		}
	}

	async *iterator(namespace?: string): AsyncGenerator<[string, string]> {
		const rows = namespace
			? this.#db.prepare("SELECT key, value FROM keyv WHERE key LIKE ? ESCAPE '\\'").iterate(`${escapeLike(namespace)}:%`)
			: this.#db.prepare("SELECT key, value FROM keyv").iterate();
		for (const row of rows as Iterable<{ key: string; value: string }>) yield [row.key, row.value];
	}

	async disconnect(): Promise<void> {
		this.#db.close();
	}
}

function escapeLike(text: string): string {
	return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
