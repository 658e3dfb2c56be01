import { createHash } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ExpectedFiles } from "./attacker.js";
import { pseudoRandom } from "./trees.js";

/** A small seeded PRNG (mulberry32): the same seed, the same world on every machine. */
export function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/**
 * A folder of incompressible files in a few directories, changed a little before each run:
 * `changes` files get new content, and now and then one file comes or goes.
 */
export class ChurningFolder {
	readonly #contents = new Map<string, string>();
	readonly #random: () => number;
	#generation = 0;

	constructor(
		readonly root: string,
		readonly options: { files: number; fileBytes: number; seed: number },
	) {
		this.#random = prng(options.seed);
	}

	async create(): Promise<void> {
		for (let i = 0; i < this.options.files; i++) await this.#write(`d${i % 4}/f${i}.bin`);
	}

	async churn(changes: number): Promise<void> {
		const names = [...this.#contents.keys()];
		for (let i = 0; i < changes && names.length > 0; i++) {
			const pick = names.splice(Math.floor(this.#random() * names.length), 1)[0] as string;
			await this.#write(pick);
		}
		if (this.#random() < 0.2) {
			const name = `d${Math.floor(this.#random() * 4)}/extra${this.#generation}.bin`;
			await this.#write(name);
		}
		const extras = [...this.#contents.keys()].filter((n) => n.includes("extra"));
		if (extras.length > 2) {
			const gone = extras[0] as string;
			await rm(join(this.root, gone));
			this.#contents.delete(gone);
		}
	}

	/** What a snapshot taken now must restore to, under the source root's name `prefix`. */
	expected(prefix: string): ExpectedFiles {
		return new Map([...this.#contents].map(([name, sha]) => [`${prefix}/${name}`, sha]));
	}

	async #write(name: string): Promise<void> {
		this.#generation++;
		const bytes = pseudoRandom(this.options.fileBytes, this.options.seed * 1_000_003 + this.#generation);
		await mkdir(join(this.root, name, ".."), { recursive: true });
		await writeFile(join(this.root, name), bytes);
		this.#contents.set(name, createHash("sha256").update(bytes).digest("hex"));
	}
}
