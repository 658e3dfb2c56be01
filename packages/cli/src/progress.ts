// The unit formatting alone, not the whole core: progress is drawn before anything else loads.
import { formatBytes } from "@holdfast/core/units";
/**
 * Progress on stderr, on a terminal only (never for --json, --quiet, pipes or cron). It says
 * only what is known: counts and rates while the total is unknown or has been overtaken, a
 * percentage and an ETA once a total stands and enough time has passed to estimate one.
 */
export interface Progress {
	/** Cumulative counts so far. */
	update(done: { files?: number; bytes?: number; items?: number }): void;
	/** The total, when it becomes known (undefined: unknown again). */
	setTotal(total: { files?: number; bytes?: number; items?: number } | undefined): void;
	stop(): void;
}

export interface ProgressWish {
	progress?: boolean;
	json?: boolean;
	quiet?: boolean;
}

/** Whether a progress line may be drawn for these options on this stderr. */
export function progressWanted(args: ProgressWish, stream: NodeJS.WriteStream = process.stderr): boolean {
	return args.progress !== false && !args.json && !args.quiet && Boolean(stream.isTTY);
}

const NONE: Progress = { update: () => undefined, setTotal: () => undefined, stop: () => undefined };
const REDRAW_MS = 250;
/** Before this, a rate is noise and an ETA a guess. */
const ETA_AFTER_MS = 3000;

export function startProgress(label: string, enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
	if (!enabled) return NONE;
	const started = Date.now();
	const done = { files: 0, bytes: 0, items: 0 };
	let total: { files?: number; bytes?: number; items?: number } | undefined;
	let drawnAt = 0;
	let drawn = false;

	const draw = (force: boolean) => {
		const now = Date.now();
		if (!force && drawn && now - drawnAt < REDRAW_MS) return;
		drawnAt = now;
		drawn = true;
		// A terminal of unknown size (0 columns) gets a full line rather than a stub.
		const width = Math.max(40, (stream.columns || 100) - 1);
		stream.write(`\r${render(label, done, total, now - started).slice(0, width)}\x1b[K`);
	};

	// Drawn on a timer too: a count that stopped moving (one large file being read) still shows the
	// clock running, and the last update before a pause is drawn, not dropped by the throttle.
	const timer = setInterval(() => draw(true), REDRAW_MS);
	timer.unref();
	return {
		update(next) {
			if (next.files !== undefined) done.files = next.files;
			if (next.bytes !== undefined) done.bytes = next.bytes;
			if (next.items !== undefined) done.items = next.items;
			draw(false);
		},
		setTotal(next) {
			total = next;
		},
		stop() {
			clearInterval(timer);
			if (drawn) stream.write("\r\x1b[K");
		},
	};
}

export function render(
	label: string,
	done: { files: number; bytes: number; items: number },
	total: { files?: number; bytes?: number; items?: number } | undefined,
	elapsedMs: number,
): string {
	const seconds = elapsedMs / 1000;
	const parts = [label];
	// The measure a percentage is taken of: bytes when known, else items, else files.
	const [doneOf, totalOf] =
		total?.bytes !== undefined && total.bytes > 0
			? [done.bytes, total.bytes]
			: total?.items !== undefined && total.items > 0
				? [done.items, total.items]
				: total?.files !== undefined && total.files > 0
					? [done.files, total.files]
					: [0, undefined];
	const known = totalOf !== undefined && doneOf <= totalOf;
	if (known) {
		const fraction = doneOf / totalOf;
		const cells = 20;
		const filled = Math.min(cells, Math.floor(fraction * cells));
		parts.push(`[${"#".repeat(filled)}${"-".repeat(cells - filled)}] ${Math.floor(fraction * 100)} %`);
	}
	if (done.items > 0 || total?.items !== undefined) parts.push(`${done.items}${known && total?.items ? `/${total.items}` : ""}`);
	if (done.files > 0 || total?.files !== undefined)
		parts.push(`${done.files}${known && total?.files ? `/${total.files}` : ""} ${done.files === 1 ? "file" : "files"}`);
	if (done.bytes > 0 || total?.bytes !== undefined)
		parts.push(`${formatBytes(done.bytes)}${known && total?.bytes ? ` of ${formatBytes(total.bytes)}` : ""}`);
	if (seconds >= 1) {
		if (done.bytes > 0) parts.push(`${formatBytes(done.bytes / seconds)}/s`);
		if (done.files > 0) parts.push(`${Math.round(done.files / seconds)} files/s`);
		else if (done.items > 0) parts.push(`${(done.items / seconds).toFixed(1)}/s`);
	}
	if (known && elapsedMs >= ETA_AFTER_MS && doneOf > 0 && doneOf < totalOf) {
		parts.push(`ETA ${clock(((totalOf - doneOf) * elapsedMs) / doneOf / 1000)}`);
	} else {
		parts.push(clock(seconds));
	}
	return parts.join("  ");
}

function clock(totalSeconds: number): string {
	const s = Math.max(0, Math.round(totalSeconds));
	const h = Math.floor(s / 3600);
	const m = Math.floor((s % 3600) / 60);
	const pad = (n: number) => String(n).padStart(2, "0");
	return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}
