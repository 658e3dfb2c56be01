#!/usr/bin/env node
// holdfast against restic on the same generated data, in the same run, on this machine.
// Usage: npm run bench [-- --scale 1 --reps 3 --cpu-prof --no-s3 --smoke --only mixed|small|fleet]
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { generate, generateSmall, mutate } from "./generate.mjs";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const HOLDFAST = join(ROOT, "packages/cli/bin/holdfast.js");
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const value = (name, fallback) => {
	const at = args.indexOf(`--${name}`);
	return at >= 0 ? args[at + 1] : fallback;
};
const smoke = flag("smoke");
const scale = Number(value("scale", smoke ? "0.02" : "1"));
const reps = Number(value("reps", smoke ? "1" : "3"));
const cpuProf = flag("cpu-prof");
const only = value("only", undefined);
const outDir = join(ROOT, "bench/out");
mkdirSync(outDir, { recursive: true });

function ensureRestic() {
	if (spawnSync("restic", ["version"]).status === 0) return;
	console.error("bench: installing restic (Debian package)");
	const install = () =>
		spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "restic", "time"], { stdio: "ignore" }).status === 0;
	if (!install()) {
		spawnSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
		if (!install()) throw new Error("bench: restic is not installed and apt-get could not install it");
	}
}

/** Wall, user+system CPU and peak RSS of one command, from GNU time. */
function measure(command, commandArgs, env, cwd) {
	const timeFile = join(tmpdir(), `holdfast-bench-time-${process.pid}`);
	const treeFile = join(tmpdir(), `holdfast-bench-tree-${process.pid}`);
	const timed = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", timeFile, command, ...commandArgs];
	// Outside GNU time, so neither the sampler's CPU nor its memory counts toward the tool's.
	const result = spawnSync(process.execPath, [join(ROOT, "bench/tree-peak.mjs"), treeFile, ...timed], {
		env: { ...process.env, ...env },
		cwd,
		encoding: "utf8",
		maxBuffer: 64 * 1024 * 1024,
	});
	if (result.status !== 0 && result.status !== 3) {
		throw new Error(`bench: ${command} ${commandArgs.join(" ")} failed (${result.status}):\n${result.stderr}`);
	}
	const [wall, user, sys, rssKb] = readFileSync(timeFile, "utf8").trim().split("\n").pop().split(" ").map(Number);
	// A tool of several processes counts them all: the largest one's RSS and the others' private pages (tree-peak.mjs).
	const treeKb = Number(readFileSync(treeFile, "utf8"));
	// Read: a run leaves nothing of its own behind in the temporary folder.
	rmSync(timeFile, { force: true });
	rmSync(treeFile, { force: true });
	return { wall, cpu: user + sys, rss: Math.max(rssKb, treeKb) * 1024 };
}

/**
 * Bytes and objects of a repository folder. The fs destination keeps each object version as
 * `<version>.data` beside a `<version>.json` of its emulated lock: one object, not two.
 */
function du(path, isObject = () => true) {
	let bytes = 0;
	let objects = 0;
	const walk = (dir) => {
		for (const name of readdirSync(dir)) {
			const full = join(dir, name);
			const info = statSync(full);
			if (info.isDirectory()) walk(full);
			else {
				bytes += info.size;
				if (isObject(name)) objects++;
			}
		}
	};
	walk(path);
	return { bytes, objects };
}

const S3 = Object.fromEntries(
	execFileSync("bash", [join(ROOT, "scripts/s3-test-server.sh"), "env"], { encoding: "utf8" })
		.trim()
		.split("\n")
		.map((l) => l.split("=", 2)),
);
async function s3Up() {
	try {
		return (await fetch(S3.HOLDFAST_S3_ENDPOINT, { signal: AbortSignal.timeout(2000) })).status < 500;
	} catch {
		return false;
	}
}

const tools = {
	holdfast: {
		setup(work, data, s3Bucket) {
			const destination = s3Bucket
				? `{ type: s3, endpoint: "${S3.HOLDFAST_S3_ENDPOINT}", bucket: ${s3Bucket}, keyIdEnv: HOLDFAST_S3_ACCESS_KEY, secretEnv: HOLDFAST_S3_SECRET_KEY }`
				: `{ type: fs, path: ${join(work, "repo")} }`;
			writeFileSync(
				join(work, "holdfast.yaml"),
				`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-b2", "@holdfast/plugin-retention-planner"]
catalog: sqlite://${join(work, "catalog.sqlite")}
sets:
  bench:
    sources: [{ type: fs, path: ${data} }]
    destination: ${destination}
    retention: { days: 30 }
    schedule: { every: 1d }
`,
			);
			const env = {
				HOLDFAST_PASSWORD: "bench password",
				HOLDFAST_S3_ACCESS_KEY: S3.HOLDFAST_S3_ACCESS_KEY,
				HOLDFAST_S3_SECRET_KEY: S3.HOLDFAST_S3_SECRET_KEY,
			};
			const profile = cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(outDir, "profiles")}`] : [];
			const run = (...a) =>
				measure(
					process.execPath,
					[...profile, HOLDFAST, "--config", join(work, "holdfast.yaml"), "--no-progress", "--quiet", ...a],
					env,
					work,
				);
			run("init");
			return {
				backup: () => run("backup"),
				restore: (target) => run("restore", "latest", "--target", target),
				check: () => run("check", "--read-data"),
				repo: join(work, "repo"),
				isObject: (name) => !name.endsWith(".json"),
			};
		},
	},
	restic: {
		setup(work, data, s3Bucket) {
			const repo = s3Bucket ? `s3:${S3.HOLDFAST_S3_ENDPOINT}/${s3Bucket}` : join(work, "repo");
			const env = {
				RESTIC_PASSWORD: "bench password",
				RESTIC_CACHE_DIR: join(work, "cache"),
				AWS_ACCESS_KEY_ID: S3.HOLDFAST_S3_ACCESS_KEY,
				AWS_SECRET_ACCESS_KEY: S3.HOLDFAST_S3_SECRET_KEY,
			};
			const run = (...a) => measure("restic", ["-r", repo, "--quiet", ...a], env, work);
			run("init");
			return {
				backup: () => run("backup", data),
				restore: (target) => run("restore", "latest", "--target", target),
				check: () => run("check", "--read-data"),
				repo,
			};
		},
	},
};

function median(values) {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)];
}

/**
 * The data sets, each its own section of ratios: the mixed set (small, binary, duplicate and
 * large files; backup, no-change, 1 %-change, restore) and 200,000 tiny files, where the cost
 * per file rather than per byte decides.
 */
const DATASETS = {
	mixed: {
		title: "mixed files",
		generate: (data) => generate(data, scale),
		mutate: (data) => mutate(data),
		rows: (withS3) => [
			["first backup, wall s", (r) => r.first.wall],
			["first backup, CPU s", (r) => r.first.cpu],
			["no-change backup, wall s", (r) => r.noChange.wall],
			["1%-change backup, wall s", (r) => r.changed.wall],
			["restore, wall s", (r) => r.restore.wall],
			...(withS3
				? [
						["first backup to S3, wall s", (r) => r.s3First.wall],
						["restore from S3, wall s", (r) => r.s3Restore.wall],
					]
				: []),
		],
	},
	small: {
		title: `${Math.max(1, Math.round(200_000 * scale))} small files (0–8 KiB)`,
		generate: (data) => generateSmall(data, scale),
		rows: () => [
			["first backup, wall s", (r) => r.first.wall],
			["first backup, CPU s", (r) => r.first.cpu],
			["no-change backup, wall s", (r) => r.noChange.wall],
			["restore, wall s", (r) => r.restore.wall],
		],
	},
};

/** The goal of each ratio against restic (DESIGN.md, "Speed"). */
const TARGETS = { time: 1.0, rss: 2.0, bytes: 1.0, objects: 1.5 };

async function runDataset(base, key, withS3) {
	const dataset = DATASETS[key];
	const results = { holdfast: [], restic: [] };
	for (let rep = 0; rep < reps; rep++) {
		// Which tool goes first alternates: neither always meets a cold page cache.
		const order = rep % 2 === 0 ? Object.keys(tools) : Object.keys(tools).reverse();
		for (const name of order) {
			const work = join(base, `${key}-${name}-${rep}`);
			const data = join(work, "data");
			mkdirSync(data, { recursive: true });
			const generated = dataset.generate(data);
			const tool = tools[name].setup(work, data);
			const first = tool.backup();
			const noChange = tool.backup();
			let changed;
			if (dataset.mutate) {
				dataset.mutate(data);
				changed = tool.backup();
			}
			const restoreDir = join(work, "restored");
			const restore = tool.restore(restoreDir);
			// Every pack read back and verified: the third command whose peak the targets count.
			const check = tool.check();
			const stored = du(tool.repo, tool.isObject);
			let s3First;
			let s3Restore;
			if (withS3 && key === "mixed") {
				const s3Work = join(work, "s3");
				mkdirSync(s3Work, { recursive: true });
				const s3Tool = tools[name].setup(s3Work, data, `bench-${name}-${rep}-${Date.now().toString(36)}`);
				s3First = s3Tool.backup();
				s3Restore = s3Tool.restore(join(s3Work, "restored"));
			}
			results[name].push({ generated, first, noChange, changed, restore, check, stored, s3First, s3Restore });
			console.error(
				`bench: ${key} ${name} rep ${rep + 1}: first ${first.wall}s, no-change ${noChange.wall}s${changed ? `, 1% ${changed.wall}s` : ""}, restore ${restore.wall}s, check --read-data ${check.wall}s`,
			);
		}
		// No folder is removed before every timing is done (main removes them all at the end): on
		// ext4 without a journal, creating a file skips every free inode deleted in the last 60 s,
		// or 360 s while its inode table block is dirty (RECENTCY_MIN and RECENTCY_DIRTY in the
		// kernel's ialloc.c), rescanning them on each create. A restore right after a large removal
		// paid 30-39 s of system CPU in that scan instead of 6, and since the restore's own creates
		// keep the blocks dirty, no wait of a minute helps: which tool and rep met a removal decided
		// the medians. A user restores into a file system that has not just lost a backup's worth
		// of files; so does the bench.
	}
	const pick = (name, f) => median(results[name].map(f));
	const runs = (r) => [r.first, r.noChange, r.changed, r.restore].filter(Boolean);
	const rows = [
		...dataset.rows(withS3).map(([label, f]) => [label, f, TARGETS.time]),
		["peak RSS, MiB (max of runs)", (r) => Math.max(...runs(r).map((m) => m.rss)) / 1048576, TARGETS.rss],
		["restore peak RSS, MiB", (r) => r.restore.rss / 1048576, TARGETS.rss],
		["check --read-data, wall s", (r) => r.check.wall, TARGETS.time],
		["check --read-data peak RSS, MiB", (r) => r.check.rss / 1048576, TARGETS.rss],
		["stored bytes, MiB", (r) => r.stored.bytes / 1048576, TARGETS.bytes],
		["objects written", (r) => r.stored.objects, TARGETS.objects],
	];
	const table = rows.map(([label, f, target]) => {
		const h = pick("holdfast", f);
		const r = pick("restic", f);
		const ratio = r > 0 ? h / r : null;
		return { metric: label, holdfast: h, restic: r, ratio, target, pass: ratio !== null && ratio <= target };
	});
	return { title: dataset.title, table, results };
}

function printTable({ title, table }) {
	const width = Math.max(...table.map((t) => t.metric.length));
	console.log(`\n${title}`);
	console.log(
		`${"metric".padEnd(width)}  ${"holdfast".padStart(10)}  ${"restic".padStart(10)}  ${"ratio".padStart(6)}  ${"target".padStart(6)}`,
	);
	for (const t of table) {
		console.log(
			`${t.metric.padEnd(width)}  ${t.holdfast.toFixed(2).padStart(10)}  ${t.restic.toFixed(2).padStart(10)}  ${(t.ratio ?? 0).toFixed(2).padStart(6)}  ${`≤${t.target.toFixed(1)}`.padStart(6)}  ${t.pass ? "PASS" : "FAIL"}`,
		);
	}
}

/**
 * 8 machines backing up into one repository at once against one machine alone: total bytes
 * per second of the eight over that of the one. Each tree is its own random data (nothing to
 * deduplicate), so the ratio shows what concurrent writers cost each other, not what they share.
 */
async function runFleet(base) {
	const writers = 8;
	const mib = Math.max(1, Math.round(8 * scale * 10) / 10);
	const work = join(base, "fleet");
	const repo = join(work, "repo");
	const machines = [];
	for (let i = 0; i <= writers; i++) {
		const dir = join(work, `h${i}`);
		mkdirSync(join(dir, "data"), { recursive: true });
		for (let f = 0; f < 8; f++) writeFileSync(join(dir, "data", `f${f}.bin`), randomBytes(Math.round((mib * 1048576) / 8)));
		writeFileSync(
			join(dir, "holdfast.yaml"),
			`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-retention-planner"]
catalog: sqlite://${join(dir, "catalog.sqlite")}
host: h${i}
sets:
  bench:
    sources: [{ type: fs, path: ${join(dir, "data")} }]
    destination: { type: fs, path: ${i === 0 ? join(work, "alone") : repo} }
    retention: { days: 30 }
`,
		);
		machines.push(dir);
	}
	const env = { ...process.env, HOLDFAST_PASSWORD: "bench password" };
	const run = (dir, ...a) =>
		new Promise((resolvePromise, reject) => {
			const child = spawn(
				process.execPath,
				[HOLDFAST, "--config", join(dir, "holdfast.yaml"), "--no-progress", "--quiet", ...a],
				{
					env,
					stdio: ["ignore", "ignore", "pipe"],
				},
			);
			let stderr = "";
			child.stderr.on("data", (d) => (stderr += d));
			child.on("close", (code) =>
				code === 0 ? resolvePromise() : reject(new Error(`bench: fleet ${a[0]} failed (${code}):\n${stderr}`)),
			);
		});
	const [alone, ...fleet] = machines;
	await run(alone, "init");
	await run(fleet[0], "init");
	let started = performance.now();
	await run(alone, "backup");
	const aloneSeconds = (performance.now() - started) / 1000;
	started = performance.now();
	await Promise.all(fleet.map((dir) => run(dir, "backup")));
	const fleetSeconds = (performance.now() - started) / 1000;
	rmSync(work, { recursive: true, force: true });
	const one = mib / aloneSeconds;
	const all = (mib * writers) / fleetSeconds;
	return { writers, mibPerWriter: mib, aloneSeconds, fleetSeconds, oneMiBs: one, fleetMiBs: all, ratio: all / one };
}

async function main() {
	const base = mkdtempSync(join(tmpdir(), "holdfast-bench-"));
	const withS3 = !flag("no-s3") && (await s3Up());
	const keys = only ? (only === "fleet" ? [] : [only]) : Object.keys(DATASETS);
	for (const key of keys)
		if (!DATASETS[key]) throw new Error(`bench: --only takes ${[...Object.keys(DATASETS), "fleet"].join(" or ")}, not ${key}`);
	console.error(
		`bench: scale ${scale} (~${Math.round(scale * 1000)} MB), ${reps} repetition(s), S3 ${withS3 ? "on" : "off"}, in ${base}`,
	);
	// The fleet line compares holdfast with itself: restic is needed only for the data sets.
	if (keys.length > 0) ensureRestic();
	const sections = {};
	for (const key of keys) sections[key] = await runDataset(base, key, withS3);
	for (const key of keys) printTable(sections[key]);
	const fleet = !only || only === "fleet" ? await runFleet(base) : undefined;
	if (fleet)
		console.log(
			`\nfleet: ${fleet.writers} concurrent writers into one repository ${fleet.fleetMiBs.toFixed(2)} MiB/s in total, one writer ${fleet.oneMiBs.toFixed(2)} MiB/s (${fleet.mibPerWriter} MiB each): ratio ${fleet.ratio.toFixed(2)}`,
		);
	// The walk's memory must not grow with the number of files: 10x the files, about the same heap.
	const scan = (only ? [] : [smoke ? 2_000 : 10_000, smoke ? 20_000 : 100_000]).map((n) =>
		JSON.parse(
			execFileSync(process.execPath, ["--expose-gc", join(ROOT, "bench/scan-memory.mjs"), String(n)], { encoding: "utf8" }),
		),
	);
	for (const s of scan) console.log(`scan of ${s.files} files: peak live heap ${(s.peakLiveHeapBytes / 1048576).toFixed(2)} MiB`);
	const report = {
		date: new Date().toISOString(),
		node: process.version,
		...(keys.length > 0 ? { restic: execFileSync("restic", ["version"], { encoding: "utf8" }).trim() } : {}),
		scale,
		reps,
		sections,
		scan,
		...(fleet ? { fleet } : {}),
	};
	writeFileSync(join(outDir, "latest.json"), JSON.stringify(report, null, 2));
	console.error(`bench: results in ${join(outDir, "latest.json")}${cpuProf ? `, profiles in ${join(outDir, "profiles")}` : ""}`);
	rmSync(base, { recursive: true, force: true });
}

main().catch((error) => {
	console.error(error.message);
	process.exit(1);
});
