#!/usr/bin/env node
// Where a repository's bytes go, by object kind and, inside packs, by blob type, size and codec:
// holdfast's (folder destination; needs `npm run build`, it reads the compiled core) or restic's.
// Usage: node bench/stored-breakdown.mjs holdfast|restic <repository folder>
// (the password in HOLDFAST_PASSWORD or RESTIC_PASSWORD, as for the tools themselves).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const [tool, repo] = process.argv.slice(2);
if (!["holdfast", "restic"].includes(tool) || !repo || !existsSync(repo)) {
	console.error("stored-breakdown: give holdfast or restic, then an existing repository folder");
	process.exit(2);
}

/** Rows keyed "kind" (an object kind: its files' bytes, which add up to the total) or "kind / part" (what those bytes hold). */
const rows = new Map();
const add = (key, bytes, count = 1) => {
	const row = rows.get(key) ?? { count: 0, bytes: 0 };
	row.count += count;
	row.bytes += bytes;
	rows.set(key, row);
};

/** Blobs by plaintext size: under 2 KiB, whole small files, and chunks of large files (the chunker's minimum is 512 KiB). */
const sizeClass = (raw) => (raw < 2048 ? "< 2 KiB" : raw < 512 * 1024 ? "< 512 KiB" : ">= 512 KiB");

function files(dir) {
	const out = [];
	for (const name of readdirSync(dir)) {
		const full = join(dir, name);
		if (statSync(full).isDirectory()) out.push(...files(full));
		else out.push(full);
	}
	return out;
}

async function holdfast() {
	const core = new URL("../packages/core/dist/repository/", import.meta.url);
	const { RepositoryKeys } = await import(new URL("crypto.js", core));
	const { deriveKey } = await import(new URL("key-derivation.js", core));
	const { open } = await import(new URL("blob-codec.js", core));
	const { decompress } = await import(new URL("compression.js", core));
	const all = files(repo);
	const kindOf = (path) => relative(join(repo, "objects"), path).split("/")[0];
	const keyFile = all.find((p) => kindOf(p) === "keys" && p.endsWith(".data"));
	const file = JSON.parse(readFileSync(keyFile, "utf8"));
	const kek = await deriveKey(process.env.HOLDFAST_PASSWORD ?? "", Buffer.from(file.salt, "base64"), file);
	const keys = RepositoryKeys.fromMaster(open(kek, Buffer.from(file.master, "base64"), keyFile));
	const codecs = ["stored", "deflate", "brotli", "zstd"];
	for (const path of all) {
		const size = statSync(path).size;
		const kind = kindOf(path);
		// The folder destination keeps each version's emulated lock beside it; S3 keeps it as metadata.
		if (path.endsWith(".json")) {
			add(`${kind} lock records`, size);
			continue;
		}
		add(kind, size);
		if (kind === "index" || kind === "snapshots" || kind === "config") {
			const plain = keys.open(readFileSync(path), path);
			add(`${kind} / JSON`, decompress(plain, path).length);
			add(`${kind} / ${codecs[plain[0]]} body`, plain.length - 1);
		}
		if (kind !== "data") continue;
		const pack = readFileSync(path);
		const headerLength = pack.readUInt32LE(pack.length - 4);
		const header = keys.open(pack.subarray(pack.length - 4 - headerLength, pack.length - 4), path);
		add("data / pack headers, sealed, and their length", headerLength + 4);
		for (let at = 0; at < header.length; at += 45) {
			const type = header[at] === 0 ? "data" : "tree";
			const offset = header.readUInt32LE(at + 33);
			const length = header.readUInt32LE(at + 37);
			const raw = header.readUInt32LE(at + 41);
			const codec = codecs[keys.open(pack.subarray(offset, offset + length), path)[0]];
			add(`data / ${type} blobs: nonce, tag, codec byte`, 29);
			add(`data / ${type} blobs ${sizeClass(raw)}, ${codec}: body`, length - 29);
			add(`data / ${type} blobs ${sizeClass(raw)}, ${codec}: plaintext (not stored)`, raw);
		}
	}
}

function restic() {
	const all = files(repo);
	for (const path of all) add(relative(repo, path).split("/")[0], statSync(path).size);
	const run = (...a) => execFileSync("restic", ["-r", repo, "--no-cache", ...a], { encoding: "utf8", maxBuffer: 1 << 30 });
	let blobBytes = 0;
	for (const id of run("list", "index").trim().split("\n")) {
		for (const pack of JSON.parse(run("cat", "index", id)).packs) {
			for (const blob of pack.blobs) {
				// A blob's length includes its 16-byte nonce and 16-byte MAC; zstd frames random data too,
				// so what did not shrink by 5 % is counted apart, as holdfast would have stored it.
				const raw = blob.uncompressed_length ?? blob.length - 32;
				const codec = blob.length - 32 < raw * 0.95 ? "zstd" : "not shrunk";
				add(`data / ${blob.type} blobs: nonce, MAC`, 32);
				add(`data / ${blob.type} blobs ${sizeClass(raw)}, ${codec}: body`, blob.length - 32);
				add(`data / ${blob.type} blobs ${sizeClass(raw)}, ${codec}: plaintext (not stored)`, raw);
				blobBytes += blob.length;
			}
		}
	}
	add("data / pack headers (the rest of the packs)", (rows.get("data")?.bytes ?? 0) - blobBytes);
}

if (tool === "holdfast") await holdfast();
else restic();
const MiB = 1048576;
let total = 0;
for (const key of [...rows.keys()].sort()) {
	const { count, bytes } = rows.get(key);
	if (!key.includes(" / ")) total += bytes;
	console.log(
		`${key.padEnd(64)} ${String(count).padStart(7)} ${String(bytes).padStart(11)} B ${(bytes / MiB).toFixed(3).padStart(8)} MiB`,
	);
}
console.log(
	`${"total (object kinds)".padEnd(64)} ${"".padStart(7)} ${String(total).padStart(11)} B ${(total / MiB).toFixed(3).padStart(8)} MiB`,
);
