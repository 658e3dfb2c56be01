import { type BigIntStats, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { chmod, rm, stat, unlink } from "node:fs/promises";
import { HoldfastError } from "../host/errors.js";
import { makeFolders } from "../host/folders.js";
import { atPath, targetError } from "./restore-errors.js";
import { isRestoreTemp } from "./restore-writer.js";

/** What the target holds at a path before the restore writes there. */
export type Existing =
	| { readonly kind: "none" }
	| { readonly kind: "dir"; readonly stats: BigIntStats }
	| { readonly kind: "symlink"; readonly stats: BigIntStats }
	| { readonly kind: "file"; readonly stats: BigIntStats }
	| { readonly kind: "other"; readonly stats: BigIntStats };

const NONE: Existing = { kind: "none" };
const SLASH = Buffer.from("/");

/**
 * One folder of the target, made or entered at most once. Entering lists it: names that
 * exist are looked at with lstat (never followed), and temporary files of a killed restore
 * are removed. A freshly made folder needs no listing.
 */
export class TargetDir {
	#ready: Promise<boolean> | undefined;
	/** What `#ready` resolved to, once it has. */
	#isReady: boolean | undefined;
	#names: Set<string> | undefined;
	/** The folder's path and a slash, the start of every path in it. */
	#prefix: Buffer | undefined;

	constructor(
		readonly path: Buffer,
		readonly display: string,
		readonly rel: string,
		readonly name: Buffer,
		readonly parent: TargetDir | undefined,
	) {}

	/** Resolves after `ensure` whether the folder exists and is ours to write into. */
	get settled(): Promise<boolean> | undefined {
		return this.#ready;
	}

	/**
	 * Without waiting, what `ensure` resolved to: whether the folder exists and is ours to
	 * write into; undefined until it has resolved (or when it failed).
	 */
	get ready(): boolean | undefined {
		return this.#isReady;
	}

	/** Whether this folder or one it lies in was found unable to hold what the snapshot has there. */
	get passedOver(): boolean {
		for (let dir: TargetDir | undefined = this; dir; dir = dir.parent) if (dir.#isReady === false) return true;
		return false;
	}

	child(name: Buffer, rel: string): TargetDir {
		return new TargetDir(this.pathOf(name), `${this.display}/${name.toString("utf8")}`, rel, name, this);
	}

	/** The path of `name` in this folder. */
	pathOf(name: Buffer): Buffer {
		this.#prefix ??= Buffer.concat([this.path, SLASH]);
		return Buffer.concat([this.#prefix, name]);
	}

	/**
	 * Whether the folder held `name` when it was entered: only then can something be in the
	 * way. A folder this restore made holds nothing it did not put there.
	 */
	mayHold(name: Buffer): boolean {
		const names = this.#names;
		return names !== undefined && names.size > 0 && names.has(name.toString("latin1"));
	}

	/** What is at `name` in this folder now, looked at without following a link. */
	async existing(name: Buffer, path: Buffer, display: string): Promise<Existing> {
		if (!this.mayHold(name)) return NONE;
		return inspect(path, display);
	}

	/**
	 * Makes or enters this folder; false when it cannot be restored into (a conflict already
	 * reported, here or in a parent). A symlink in the way stops the restore unless
	 * `overwrite`: writing through it would write outside the target.
	 */
	ensure(policy: DirPolicy): Promise<boolean> {
		this.#ready ??= this.#make(policy).then((ready) => {
			this.#isReady = ready;
			return ready;
		});
		return this.#ready;
	}

	async #make(policy: DirPolicy): Promise<boolean> {
		if (!this.parent) {
			// The target itself was named by the user: a link there is followed like any path argument.
			await atPath(this.display, () => makeFolders(this.path));
			const info = await atPath(this.display, () => stat(this.path));
			if (!info.isDirectory()) throw new HoldfastError("TARGET", `restore: ${this.display}: not a folder`);
			await this.#list();
			return true;
		}
		if (!(await this.parent.ensure(policy))) return false;
		const found = await this.parent.existing(this.name, this.path, this.display);
		if (found.kind === "dir") {
			// A folder an earlier restore made read-only (as the snapshot has it) is opened for writing
			// by its owner; the folder's own mode is set again once its entries are in.
			const mode = Number(found.stats.mode & 0o7777n);
			if ((mode & 0o300) !== 0o300 && BigInt(process.getuid?.() ?? -1) === found.stats.uid) {
				await atPath(this.display, () => chmod(this.path, mode | 0o700));
			}
			await this.#list();
			return true;
		}
		if (found.kind === "symlink" && !policy.overwrite) throw symlinkInTheWay(this.display);
		if (found.kind !== "none") {
			if (!policy.overwrite) {
				policy.onConflict(this.rel, this.display, "a file where the snapshot has a folder");
				return false;
			}
			await atPath(this.display, () => rm(this.path, { force: true }));
		}
		// A direct call: the walk waits on each folder it makes, and a trip through the libuv pool costs more than the mkdir.
		await atPath(this.display, async () => mkdirSync(this.path, { mode: 0o700 }));
		this.#names = new Set();
		return true;
	}

	async #list(): Promise<void> {
		// A direct call, as the lstat of each name it holds is.
		const entries = await atPath(this.display, async () => readdirSync(this.path, { encoding: "buffer" }));
		const names = new Set<string>();
		for (const name of entries) {
			// unlink leaves a folder of that name alone: only files and links are ever temporary.
			if (isRestoreTemp(name)) await unlink(this.pathOf(name)).catch(() => undefined);
			else names.add(name.toString("latin1"));
		}
		this.#names = names;
	}
}

export interface DirPolicy {
	readonly overwrite: boolean;
	onConflict(rel: string, display: string, what: string): void;
}

export function symlinkInTheWay(display: string): HoldfastError {
	return new HoldfastError(
		"TARGET",
		`restore: ${display}: is a symlink in the target; not followed (use --overwrite to replace the link)`,
	);
}

/**
 * A direct call, as the folder's `mkdir` is: the walk waits on each name the target holds,
 * and a trip through the libuv pool costs more than the lstat.
 */
async function inspect(path: Buffer, display: string): Promise<Existing> {
	let stats: BigIntStats | undefined;
	try {
		stats = lstatSync(path, { bigint: true, throwIfNoEntry: false });
	} catch (error) {
		throw targetError(display, error);
	}
	if (!stats) return NONE;
	if (stats.isDirectory()) return { kind: "dir", stats };
	if (stats.isSymbolicLink()) return { kind: "symlink", stats };
	if (stats.isFile()) return { kind: "file", stats };
	return { kind: "other", stats };
}
