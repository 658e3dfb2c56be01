#!/usr/bin/env node
import { spawnSync } from "node:child_process";
// A repository whose index lists N synthetic blobs, to measure how commands open a large index.
//
//   node bench/synthetic-index.mjs <work-dir> [--blobs 1000000] [--per-pack 250] [--packs-per-index 500] [--measure] [--cpu-prof] [--only NAME]
//
// Creates <work-dir>/repo with `holdfast init` and a real backup of a tiny folder (one
// snapshot), then writes genuine sealed index objects whose entries point at fake packs (the
// measured commands only open the index; no pack is read). With --measure it then runs
// `snapshots` (cold catalog, then warm) and a `backup` of a one-file change (warm catalog, then
// cold) under /usr/bin/time, printing wall time, CPU time and peak RSS for each, and the
// machine's load average before and after (wall time means little on a busy machine).
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** `HOLDFAST_BIN` runs another build (an earlier one, to compare back to back). */
const HOLDFAST = process.env.HOLDFAST_BIN ? resolve(process.env.HOLDFAST_BIN) : join(ROOT, "packages/cli/bin/holdfast.js");
const PASSWORD = "bench password";

function option(name, fallback) {
	const at = process.argv.indexOf(`--${name}`);
	return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const work = process.argv[2] && !process.argv[2].startsWith("--") ? resolve(process.argv[2]) : undefined;
if (!work) {
	console.error(
		"usage: node bench/synthetic-index.mjs <work-dir> [--blobs N] [--per-pack N] [--packs-per-index N] [--measure] [--cpu-prof] [--only NAME]",
	);
	process.exit(2);
}
const blobs = option("blobs", 1_000_000);
const perPack = option("per-pack", 250);
const packsPerIndex = option("packs-per-index", 500);
const measureToo = process.argv.includes("--measure");
const cpuProf = process.argv.includes("--cpu-prof");
/** `--only backup-cold` (or another row's profile name) measures that row alone. */
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const env = { ...process.env, HOLDFAST_PASSWORD: PASSWORD };
const config = join(work, "holdfast.yaml");
const data = join(work, "data");

function holdfast(args, profileName) {
	const profile =
		cpuProf && profileName
			? ["--cpu-prof", `--cpu-prof-dir=${join(work, "profiles")}`, `--cpu-prof-name=${profileName}.cpuprofile`]
			: [];
	const timeFile = join(work, "time.txt");
	const result = spawnSync(
		"/usr/bin/time",
		["-f", "%e %U %S %M", "-o", timeFile, process.execPath, ...profile, HOLDFAST, "--config", config, "--no-progress", ...args],
		{ env, cwd: work, encoding: "utf8" },
	);
	if (result.status !== 0) throw new Error(`holdfast ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
	const [wall, user, system, rssKiB] = spawnSync("cat", [timeFile], { encoding: "utf8" })
		.stdout.trim()
		.split("\n")
		.at(-1)
		.split(" ")
		.map(Number);
	return { wall, cpu: user + system, rssMiB: Math.round(rssKiB / 1024), stdout: result.stdout };
}

async function generate() {
	rmSync(work, { recursive: true, force: true });
	mkdirSync(data, { recursive: true });
	writeFileSync(join(data, "a.txt"), "a small file\n");
	writeFileSync(
		config,
		`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination"]
catalog: sqlite://${join(work, "catalog.sqlite")}
sets:
  bench:
    sources: [{ type: fs, path: ${data} }]
    destination: { type: fs, path: ${join(work, "repo")} }
    retention: { days: 30 }
    schedule: { every: 1d }
`,
	);
	holdfast(["init"]);
	holdfast(["backup"]);

	const { Repository, MemoryLogger } = await import("@holdfast/core/testing");
	const { FsDestination } = await import("@holdfast/plugin-fs-destination");
	const clock = { now: () => new Date() };
	const destination = new FsDestination({ path: join(work, "repo") }, clock, work);
	const repository = await Repository.open(PASSWORD, { destination, clock, logger: new MemoryLogger("warn") });
	repository.writeLock = { mode: "compliance", until: new Date(Date.now() + 30 * 86_400_000) };
	const until = repository.writeLock.until.toISOString();
	let written = 0;
	let objects = 0;
	while (written < blobs) {
		const packs = [];
		for (let p = 0; p < packsPerIndex && written < blobs; p++) {
			const entries = [];
			let offset = 0;
			for (let b = 0; b < perPack && written < blobs; b++, written++) {
				const length = 1000 + (written % 7919);
				entries.push([0, randomBytes(32).toString("hex"), offset, length, length - 40]);
				offset += length;
			}
			const hash = randomBytes(32).toString("hex");
			packs.push({ key: `data/${hash.slice(0, 2)}/${hash}`, size: offset + 1024, mode: "compliance", until, blobs: entries });
		}
		await repository.writeRebuiltIndex(packs, []);
		objects++;
	}
	await repository.close();
	console.log(`${work}: ${written} synthetic blob entries in ${objects} index objects`);
}

function measure() {
	const rows = [];
	const load = () =>
		loadavg()
			.map((n) => n.toFixed(1))
			.join(" ");
	const before = load();
	const cold = () => {
		for (const suffix of ["", "-wal", "-shm", ".values"]) {
			rmSync(join(work, `catalog.sqlite${suffix}`), { recursive: true, force: true });
		}
	};
	const change = () => writeFileSync(join(data, "b.txt"), `a change ${Date.now()}\n`);
	const run = (what, args, name) => {
		if (!only || only === name) rows.push([what, holdfast(args, name)]);
	};
	if (!only || only.endsWith("-cold")) cold();
	run("snapshots (cold catalog)", ["snapshots"], "snapshots-cold");
	run("snapshots (warm catalog)", ["snapshots"], "snapshots-warm");
	change();
	run("backup (warm catalog)", ["backup"], "backup");
	cold();
	change();
	run("backup (cold catalog)", ["backup"], "backup-cold");
	for (const [what, r] of rows)
		console.log(`${what.padEnd(26)} ${r.wall.toFixed(1)} s wall  ${r.cpu.toFixed(1)} s CPU  ${r.rssMiB} MiB peak RSS`);
	console.log(`load average ${before} before, ${load()} after`);
}

if (!process.argv.includes("--measure-only")) await generate();
if (measureToo || process.argv.includes("--measure-only")) measure();
