// Runs a command and writes to a file the peak memory of every process under it together:
// the largest one's resident memory plus the private memory of each other one (its pages no
// other process maps), sampled every 20 ms. GNU time's %M is the largest single process's peak,
// which undercounts a tool that runs as more than one process (a command handed to a second
// Node, say); summing their RSS would count the code they share twice.
// Usage: node bench/tree-peak.mjs <out file> <command> [args...]; the command itself is left
// out (it is GNU time wrapping the tool), only what runs below it counts.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const [out, command, ...args] = process.argv.slice(2);
const child = spawn(command, args, { stdio: "inherit" });

/** Every process below `pid`: its resident and its private KiB. Those gone midway are left out. */
function below(pid, found = []) {
	try {
		for (const task of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)) {
			if (!task) continue;
			const rollup = readFileSync(`/proc/${task}/smaps_rollup`, "utf8");
			const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? 0);
			found.push({ rss: field("Rss"), private: field("Private_Clean") + field("Private_Dirty") });
			below(Number(task), found);
		}
	} catch {
		// Ended between the listing and the read.
	}
	return found;
}

let peakKb = 0;
const sample = setInterval(() => {
	const processes = below(child.pid).sort((a, b) => b.rss - a.rss);
	const [largest, ...others] = processes;
	if (!largest) return;
	peakKb = Math.max(peakKb, largest.rss + others.reduce((sum, p) => sum + p.private, 0));
}, 20);
child.on("exit", (code, signal) => {
	clearInterval(sample);
	writeFileSync(out, String(peakKb));
	if (signal) process.kill(process.pid, signal);
	process.exit(code ?? 1);
});
