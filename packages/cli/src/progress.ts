import cliProgress from "cli-progress";

export interface Progress {
	update(done: number, total?: number): void;
	stop(): void;
}

/** A bar with rate and ETA on a terminal; nothing otherwise (cron, pipes, --no-progress, --json). */
export function startProgress(label: string, total: number, enabled: boolean, unit: "bytes" | "items"): Progress {
	if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
	const bar = new cliProgress.SingleBar(
		{
			stream: process.stderr,
			format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit === "bytes" ? "MiB" : ""} | {speed} | ETA {eta_formatted}`,
			hideCursor: true,
			etaBuffer: 50,
		},
		cliProgress.Presets.shades_classic,
	);
	const scale = unit === "bytes" ? 1 / (1024 * 1024) : 1;
	const started = Date.now();
	bar.start(Math.max(1, Math.round(total * scale)), 0, { speed: "" });
	return {
		update(done, newTotal) {
			if (newTotal !== undefined) bar.setTotal(Math.max(1, Math.round(newTotal * scale)));
			const seconds = Math.max(0.001, (Date.now() - started) / 1000);
			bar.update(Math.round(done * scale), {
				speed: `${((done * scale) / seconds).toFixed(1)} ${unit === "bytes" ? "MiB/s" : "/s"}`,
			});
		},
		stop() {
			bar.stop();
		},
	};
}
