import { createHash } from "node:crypto";
import { appendFileSync, closeSync, mkdirSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";

/**
 * Deterministic data: the same scale gives the same bytes on every machine. A mix of small
 * text-like files (compressible), binary files (random), exact duplicates and a few large files.
 */
export class Random {
	#x;
	constructor(seed) {
		// xorshift32 seeded from the seed's hash: fast enough to make a gigabyte of words.
		this.#x = createHash("sha256").update(String(seed)).digest().readUInt32LE() || 1;
	}
	next() {
		let x = this.#x;
		x ^= x << 13;
		x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5;
		this.#x = x >>> 0;
		return this.#x;
	}
	int(max) {
		return this.next() % max;
	}
}

const WORDS =
	"backup lock retention snapshot restore object bucket immutable chunk pack index tree file folder report ledger invoice".split(
		" ",
	);

const WORD_BYTES = WORDS.map((w) => Buffer.from(`${w} `));

function text(random, size) {
	const out = Buffer.allocUnsafe(size + 32);
	let at = 0;
	while (at < size) at += WORD_BYTES[random.int(WORD_BYTES.length)].copy(out, at);
	return out.subarray(0, size);
}

/** Fast pseudo-random bytes for large files: AES-CTR would need a key; a xorshift stream is enough. */
function noise(seed, size) {
	const out = Buffer.allocUnsafe(size);
	let x = (seed * 2654435761) >>> 0 || 1;
	for (let i = 0; i + 4 <= size; i += 4) {
		x ^= x << 13;
		x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5;
		x >>>= 0;
		out.writeUInt32LE(x, i);
	}
	// The last bytes of an odd size would otherwise be whatever the allocator left there.
	out.fill(0, size - (size % 4));
	return out;
}

/** About `scale` GB in about 20,000 × scale files. */
export function generate(root, scale = 1) {
	const random = new Random(`holdfast-bench-${scale}`);
	const files = Math.round(20_000 * scale);
	let bytes = 0;
	for (let i = 0; i < files; i++) {
		const dir = join(root, `d${i % 97}`, `s${i % 13}`);
		mkdirSync(dir, { recursive: true });
		const kind = i % 10;
		let content;
		if (kind < 6) content = text(random, 200 + random.int(16_000));
		else if (kind < 9) content = noise(i, 1_000 + random.int(60_000));
		else content = noise(i % 50, 5_000 + (i % 50) * 100); // duplicates of 50 files
		writeFileSync(join(dir, `f${i}.${kind < 6 ? "txt" : "bin"}`), content);
		bytes += content.length;
	}
	// Large files take the rest of the volume: half random, half compressible.
	const large = Math.max(1, Math.round(6 * scale));
	const each = Math.max(1, Math.round((scale * 1_000_000_000 - bytes) / large));
	mkdirSync(join(root, "large"), { recursive: true });
	for (let i = 0; i < large; i++) {
		const fd = openSync(join(root, "large", `big-${i}.${i % 2 ? "log" : "img"}`), "w");
		for (let at = 0; at < each; at += 8 * 1024 * 1024) {
			const size = Math.min(8 * 1024 * 1024, each - at);
			writeSync(fd, i % 2 ? text(new Random(`${i}-${at}`), size) : noise(i * 1000 + at / 8388608, size));
		}
		closeSync(fd);
		bytes += each;
	}
	return { files: files + large, bytes };
}

/**
 * Many tiny files: 200,000 × scale files of 0–8 KiB (half text, half random), about 67 to a
 * folder in two levels, the shape of a mail store or a source tree.
 */
export function generateSmall(root, scale = 1) {
	const random = new Random(`holdfast-bench-small-${scale}`);
	const files = Math.max(1, Math.round(200_000 * scale));
	const dirs = Math.max(1, Math.round(3_000 * scale));
	let bytes = 0;
	for (let d = 0; d < dirs; d++) mkdirSync(join(root, `a${d % 50}`, `b${d}`), { recursive: true });
	for (let i = 0; i < files; i++) {
		const d = i % dirs;
		const size = random.int(8 * 1024 + 1);
		const content = i % 2 ? text(random, size) : noise(i + 1, size);
		writeFileSync(join(root, `a${d % 50}`, `b${d}`, `f${i}`), content);
		bytes += content.length;
	}
	return { files, bytes };
}

/**
 * Seeds of the noise a mutation writes: past any the generator uses (files up to 20,000 × scale,
 * large files' blocks up to a few thousand), so appended and rewritten bytes are new. With the
 * round itself as the seed, the 4 MiB appended copied the large binary file's second block, and
 * what each tool stored depended on whether its cut points fell again inside the copy.
 */
const MUTATION_SEEDS = 1 << 24;

/** About 1 % of files rewritten, one large file appended to, another rewritten in the middle. */
export function mutate(root, round = 1) {
	const random = new Random(`mutate-${round}`);
	const all = [];
	const walk = (dir) => {
		for (const name of readdirSync(dir)) {
			const path = join(dir, name);
			if (statSync(path).isDirectory()) walk(path);
			else all.push(path);
		}
	};
	walk(root);
	all.sort();
	const small = all.filter((p) => !p.includes("/large/"));
	const count = Math.max(1, Math.round(all.length / 100));
	for (let i = 0; i < count; i++) writeFileSync(small[random.int(small.length)], text(random, 500 + random.int(8000)));
	const large = all.filter((p) => p.includes("/large/"));
	appendFileSync(large[0], noise(MUTATION_SEEDS + 2 * round, 4 * 1024 * 1024));
	if (large[1]) {
		const fd = openSync(large[1], "r+");
		const size = statSync(large[1]).size;
		writeSync(fd, noise(MUTATION_SEEDS + 2 * round + 1, 1024 * 1024), 0, 1024 * 1024, Math.floor(size / 2));
		closeSync(fd);
	}
	return { changed: count + 2 };
}
