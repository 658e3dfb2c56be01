import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";

/** Deterministic bytes: the same seed gives the same content on every machine. */
export function pseudoRandom(size: number, seed: number): Buffer {
	const out = Buffer.alloc(size);
	let block = createHash("sha256").update(String(seed)).digest();
	for (let at = 0; at < size; at += block.length) {
		block.copy(out, at, 0, Math.min(block.length, size - at));
		block = createHash("sha256").update(block).digest();
	}
	return out;
}

export interface Described {
	type: string;
	mode?: number;
	mtimeMs?: number;
	sha?: string;
	target?: string;
}

/** Every path under `root` with type, mode, mtime (ms) and a content hash: compared exactly. */
export async function describeTree(root: string): Promise<Record<string, Described>> {
	const out: Record<string, Described> = {};
	const walk = async (dir: Buffer, rel: string) => {
		for (const name of (await readdir(dir, { encoding: "buffer" })).sort(Buffer.compare)) {
			const path = Buffer.concat([dir, Buffer.from("/"), name]);
			const key = rel ? `${rel}/${name.toString("latin1")}` : name.toString("latin1");
			const info = await lstat(path);
			if (info.isSymbolicLink())
				out[key] = { type: "symlink", target: (await readlink(path, { encoding: "buffer" })).toString("latin1") };
			else if (info.isDirectory()) {
				out[key] = { type: "dir", mode: info.mode };
				await walk(path, key);
			} else {
				out[key] = {
					type: "file",
					mode: info.mode,
					mtimeMs: Math.floor(info.mtimeMs),
					sha: createHash("sha256")
						.update(await readFile(path))
						.digest("hex"),
				};
			}
		}
	};
	await walk(Buffer.from(root), "");
	return out;
}
