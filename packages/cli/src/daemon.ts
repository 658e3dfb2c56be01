import { HoldfastError, TOKENS } from "@holdfast/core";
import { type DueRun, dueRun } from "./due.js";
import { day } from "./output.js";
import type { GlobalOptions, Session } from "./session.js";

/** The longest single sleep: due times are re-read from the clock this often, so a jump or a suspend is noticed. */
const TICK_MS = 30_000;
/** After a failed run, the set is tried again this much later. */
const RETRY_MS = 15 * 60_000;

/**
 * Runs each set when its schedule says, one run at a time. SIGTERM/SIGINT abort the current
 * run (nothing half-written is ever listed: the snapshot is the last object written) and exit.
 */
export async function runDaemon(session: Session, args: GlobalOptions & { strictKeys?: boolean }): Promise<void> {
	const { engine, logger, clock, host } = session;
	// Whatever plugin reads the schedules provides the advisor; its package name does not matter.
	if (!host.container.isBound(TOKENS.ScheduleAdvisor))
		throw new HoldfastError(
			"CONFIG_INVALID",
			"daemon needs @holdfast/plugin-retention-planner in plugins (it reads the schedules)",
		);
	// All of it in memory before the first run: holdfast may be upgraded under a daemon.
	await engine.loadCommands();
	const stop = new AbortController();
	let stoppedBy = "";
	const onSignal = (signal: NodeJS.Signals) => {
		stoppedBy = signal;
		stop.abort();
	};
	process.once("SIGTERM", onSignal);
	process.once("SIGINT", onSignal);
	try {
		const due = new Map<string, DueRun>();
		const refresh = async (name: string) => {
			const next = await dueRun(session, name, clock.now());
			if (!next) {
				due.delete(name);
				logger.info(`${name}: no schedule; the daemon leaves it alone`);
				return;
			}
			due.set(name, next);
			if (next.missed > next.allowedMisses) logger.warn(`${name}: ${next.reason}`);
			else logger.info(`${name}: next run ${next.overdue ? "now" : day(next.at)} (${next.reason})`);
		};
		for (const name of engine.setNames()) await refresh(name);
		while (!stop.signal.aborted) {
			const first = [...due.values()].sort((a, b) => a.at.getTime() - b.at.getTime())[0];
			if (!first) return;
			// Sleep in short steps and ask the clock again: one long timer misses a clock jump or a suspend.
			const wait = first.at.getTime() - clock.now().getTime();
			if (wait > 0) {
				await sleep(Math.min(wait, TICK_MS), stop.signal);
				continue;
			}
			const name = first.set;
			try {
				const result = await engine.backup(name, { signal: stop.signal, strictKeys: Boolean(args.strictKeys) });
				const changed = result.summary.files.new + result.summary.files.changed;
				logger.info(
					`${name}: snapshot ${result.snapshot?.id.slice(0, 12)} at ${day(clock.now())} (${changed} new or changed ${changed === 1 ? "file" : "files"})`,
				);
			} catch (error) {
				if (stop.signal.aborted) {
					logger.info(`${name}: run stopped by ${stoppedBy || "request"}; nothing half-written is listed`);
					return;
				}
				logger.error(`${name}: ${(error as Error).message}`);
				const retry = new Date(clock.now().getTime() + RETRY_MS);
				due.set(name, { ...first, at: retry, overdue: false, reason: "retry after a failed run" });
				logger.info(`${name}: next try ${day(retry)}`);
				continue;
			}
			await refresh(name);
		}
	} finally {
		process.off("SIGTERM", onSignal);
		process.off("SIGINT", onSignal);
	}
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const timer = setTimeout(done, ms);
		function done() {
			clearTimeout(timer);
			signal.removeEventListener("abort", done);
			resolve();
		}
		signal.addEventListener("abort", done, { once: true });
	});
}
