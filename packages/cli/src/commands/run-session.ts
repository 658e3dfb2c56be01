import type * as Core from "@holdfast/core";
import { parseOptionalIsoTime } from "../input.js";
import type { GlobalOptions, Session, SessionOptions } from "../session.js";
import { UsageError } from "../usage-error.js";

export type Args = GlobalOptions & Record<string, unknown>;

/** The engine, loaded by the first command that needs it: `--help` and usage errors never pay for it. */
let loaded: typeof Core | undefined;

/** The engine's module; a command reaches it inside `withSession`, which loads it. */
export function core(): typeof Core {
	if (!loaded) throw new Error("the engine is loaded by withSession, not before");
	return loaded;
}

/** Opens a session, runs the body, and always closes it (plugins disposed, catalog flushed). */
export async function withSession<T>(
	args: Args,
	body: (session: Session) => Promise<T>,
	options: SessionOptions = {},
): Promise<T> {
	loaded = await import("@holdfast/core");
	refuseShiftedClock(args);
	const { openSession } = await import("../session.js");
	const session = await openSession(args, options);
	let result: T;
	try {
		result = await body(session);
	} catch (error) {
		// The command's failure is what the user needs: one in closing after it is a warning, never in its place.
		await session
			.close()
			.catch((closing: unknown) => session.logger.warn(`while closing: ${(closing as Error).message ?? String(closing)}`));
		throw error;
	}
	await session.close();
	return result;
}

export const parseTime = parseOptionalIsoTime;

/** The set a command runs on, named for messages: the one given, or the config's only set. */
export function setLabel(session: Session, set: unknown): string {
	if (set !== undefined) return String(set);
	const names = session.engine.setNames();
	return names.length === 1 ? (names[0] ?? "") : "";
}

/** Errors of a run name the set and, for the destination's, where it is (with the real cause). */
export async function naming<T>(session: Session, set: unknown, body: () => Promise<T>): Promise<T> {
	try {
		return await body();
	} catch (error) {
		const { nameRunError } = await import("../run-errors.js");
		throw nameRunError(error, setLabel(session, set), session);
	}
}

/** Commands that write to the repository (unless given --dry-run). */
const WRITES = new Set(["init", "backup", "groom", "repair", "daemon"]);
/** How far --now may be from the machine's clock for them: a clock's drift, not a moved date. */
const CLOCK_SLACK_MS = 5 * 60_000;

/**
 * `--now` is for what-if runs. A command that writes to the repository judges locks and the
 * groom's window by its clock: run at a moved date it would forget snapshots still inside
 * their window, lock objects until a far year, or promise less than the retention. It runs on
 * the real clock unless HOLDFAST_SIMULATED_CLOCK=1 says the moved date is meant (tests, drills).
 */
function refuseShiftedClock(args: Args): void {
	const command = String((args as { _?: unknown[] })._?.[0] ?? "");
	if (args.now === undefined || !WRITES.has(command) || (args as { dryRun?: unknown }).dryRun) return;
	if (process.env.HOLDFAST_SIMULATED_CLOCK === "1") return;
	const at = parseOptionalIsoTime(args.now, "--now");
	if (at && Math.abs(at.getTime() - Date.now()) > CLOCK_SLACK_MS) {
		throw new UsageError(
			`--now: ${command} writes to the repository, so it runs on the real clock; --now is for what-if runs: add --dry-run, or set HOLDFAST_SIMULATED_CLOCK=1 to write as if it were then (tests, drills)`,
		);
	}
}
