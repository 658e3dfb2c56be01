import { HoldfastError } from "@holdfast/core";
import type { GlobalOptions, Session } from "./session.js";

/**
 * Runs each set when its schedule says, one run at a time. SIGTERM/SIGINT abort the current
 * run (nothing half-written is ever listed: the snapshot is the last object written) and exit.
 */
export async function runDaemon(session: Session, _args: GlobalOptions): Promise<void> {
	const { engine, logger, clock, host } = session;
	const planner = host.plugins.find((p) => p.definition?.name === "retention-planner");
	if (!planner)
		throw new HoldfastError(
			"CONFIG_INVALID",
			"daemon needs @holdfast/plugin-retention-planner in plugins (it reads the schedules)",
		);
	const stop = new AbortController();
	const onSignal = () => stop.abort();
	process.once("SIGTERM", onSignal);
	process.once("SIGINT", onSignal);
	try {
		const due = new Map<string, Date>();
		for (const name of engine.setNames()) {
			const open = await engine.open(name);
			const plan = await engine.plan(engine.context("plan", open), open.destination);
			due.set(name, plan.nextRun ?? clock.now());
			logger.info(`${name}: next run ${due.get(name)?.toISOString()}`);
		}
		while (!stop.signal.aborted) {
			const [name, at] = [...due].sort((a, b) => a[1].getTime() - b[1].getTime())[0] ?? [];
			if (!name || !at) return;
			const wait = Math.max(0, at.getTime() - clock.now().getTime());
			await sleep(Math.min(wait, 60_000), stop.signal);
			if (stop.signal.aborted || at.getTime() > clock.now().getTime()) continue;
			try {
				const result = await engine.backup(name, { signal: stop.signal });
				logger.info(
					`${name}: snapshot ${result.snapshot?.id.slice(0, 12)} (${result.summary.files.new + result.summary.files.changed} new or changed files)`,
				);
			} catch (error) {
				logger.error(`${name}: ${(error as Error).message}`);
			}
			const open = await engine.open(name);
			const plan = await engine.plan(engine.context("plan", open), open.destination);
			due.set(name, plan.nextRun ?? new Date(clock.now().getTime() + 86_400_000));
		}
	} finally {
		process.off("SIGTERM", onSignal);
		process.off("SIGINT", onSignal);
	}
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const timer = setTimeout(resolve, ms);
		signal.addEventListener(
			"abort",
			() => {
				clearTimeout(timer);
				resolve();
			},
			{ once: true },
		);
	});
}
