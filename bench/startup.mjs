// What a command that does nothing costs: `holdfast --help`, and `holdfast snapshots` on an
// empty repository (with the real scrypt), against Node starting with nothing to run. Each
// is run 3 times to warm the caches, then 20 times; the median is what counts (issue 17's
// target: 150 ms of wall time). Run after `npm run build`: node bench/startup.mjs [runs]
// [another/bin/holdfast.js], the latter (an older build, say) measured in the same rounds.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const HOLDFAST = join(ROOT, "packages/cli/bin/holdfast.js");
const RUNS = Number(process.argv[2] ?? 20);
const OTHER = process.argv[3] ? resolve(process.argv[3]) : undefined;
const WARMUP = 3;
const TARGET_MS = 150;
const GNU_TIME = "/usr/bin/time";

const dir = mkdtempSync(join(tmpdir(), "holdfast-startup-"));
mkdirSync(join(dir, "data"));
writeFileSync(
	join(dir, "holdfast.yaml"),
	`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination"]
catalog: sqlite://./.holdfast/catalog.sqlite
sets:
  docs:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30 }
`,
);
const env = { ...process.env, HOLDFAST_PASSWORD: "startup bench" };
delete env.HOLDFAST_SCRYPT_N;
const init = spawnSync(process.execPath, [HOLDFAST, "init"], { cwd: dir, env, encoding: "utf8" });
if (init.status !== 0) throw new Error(`holdfast init failed: ${init.stderr}`);

/** Wall time as the caller sees it; CPU (user + system) and peak RSS from GNU time where it is installed. */
function once(args) {
	const timeFile = join(dir, ".time");
	const withTime = existsSync(GNU_TIME);
	const [command, commandArgs] = withTime
		? [GNU_TIME, ["-f", "%U %S %M", "-o", timeFile, process.execPath, ...args]]
		: [process.execPath, args];
	const started = performance.now();
	const result = spawnSync(command, commandArgs, { cwd: dir, env, encoding: "utf8" });
	const wall = performance.now() - started;
	if (result.status !== 0) throw new Error(`${args.join(" ")} failed: ${result.stderr}`);
	if (!withTime) return { wall };
	const [user, system, rssKb] = readFileSync(timeFile, "utf8").trim().split("\n").at(-1).split(" ").map(Number);
	return { wall, cpu: (user + system) * 1000, rss: rssKb / 1024 };
}

const median = (values) => {
	const sorted = [...values].sort((a, b) => a - b);
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const CASES = [
	{ name: "node -e 0 (Node alone)", args: ["-e", "0"] },
	{ name: "holdfast --help", args: [HOLDFAST, "--help"], target: true },
	{ name: "holdfast snapshots (empty repository)", args: [HOLDFAST, "snapshots"], target: true },
	...(OTHER
		? [
				{ name: "other: --help", args: [OTHER, "--help"] },
				{ name: "other: snapshots", args: [OTHER, "snapshots"] },
			]
		: []),
];
// Interleaved, so a burst of load from elsewhere falls on every case alike.
const samples = CASES.map(() => []);
for (let round = 0; round < WARMUP + RUNS; round++) {
	for (const [i, c] of CASES.entries()) {
		const sample = once(c.args);
		if (round >= WARMUP) samples[i].push(sample);
	}
}
rmSync(dir, { recursive: true, force: true });

console.log(`Node ${process.version}, median of ${RUNS} runs`);
console.log("command                                 wall ms  CPU ms  peak RSS MiB  target");
for (const [i, c] of CASES.entries()) {
	const wall = median(samples[i].map((s) => s.wall));
	const cpu = samples[i][0].cpu === undefined ? "" : median(samples[i].map((s) => s.cpu)).toFixed(0);
	const rss = samples[i][0].rss === undefined ? "" : Math.max(...samples[i].map((s) => s.rss)).toFixed(0);
	const verdict = c.target ? `${wall <= TARGET_MS ? "PASS" : "FAIL"} (≤ ${TARGET_MS} ms)` : "";
	console.log(`${c.name.padEnd(40)}${wall.toFixed(0).padStart(7)}${cpu.padStart(8)}${rss.padStart(14)}  ${verdict}`.trimEnd());
}
