// Peak live heap of the filesystem source walking N files, 100 to a folder: the walk must not
// grow with the number of files. Run with --expose-gc; prints one JSON line.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FsSource } from "../packages/plugin-fs-source/dist/index.js";

const count = Number(process.argv[2] ?? 100_000);
const root = mkdtempSync(join(tmpdir(), "holdfast-scan-"));
for (let i = 0; i < count; i++) {
	// Every folder holds at most 100 entries at any depth, whatever the count: only the count grows.
	const dir = join(root, `a${Math.floor(i / 1_000_000)}`, `b${Math.floor(i / 10_000) % 100}`, `c${Math.floor(i / 100) % 100}`);
	if (i % 100 === 0) mkdirSync(dir, { recursive: true });
	writeFileSync(join(dir, `f${i}`), "x");
}
global.gc();
const base = process.memoryUsage().heapUsed;
let peak = 0;
let entries = 0;
for await (const _ of new FsSource({ path: root }).scan({ signal: new AbortController().signal, onSkip() {} })) {
	if (++entries % 1000 === 0) {
		global.gc();
		peak = Math.max(peak, process.memoryUsage().heapUsed - base);
	}
}
rmSync(root, { recursive: true, force: true });
console.log(JSON.stringify({ files: count, entries, peakLiveHeapBytes: peak }));
