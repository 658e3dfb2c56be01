import { type OpenSet, type ScheduleAdvisor, type SnapshotRef, TOKENS } from "@holdfast/core";
import { day } from "./output.js";
import type { Session } from "./session.js";

/** When a set's next run on one host is due, and why: the daemon acts on it and `status` shows it. */
export interface DueRun {
	set: string;
	host: string;
	at: Date;
	/** "overdue since …", "last snapshot … + 7d", "never backed up". */
	reason: string;
	overdue: boolean;
	/** Scheduled runs that went by without a snapshot. */
	missed: number;
	/** The planner's grace (missedRuns): more missed runs than this and locks may have run out. */
	allowedMisses: number;
}

/** Counting missed runs stops here: beyond it the number only says "very many". */
const MAX_COUNTED = 1000;

/**
 * Due times come from the last snapshot, not from when the daemon started: an overdue set
 * runs at once, and a daemon restarted more often than its interval still runs on time.
 * Only this machine's snapshots count: another host backing up the same set does not.
 */
export async function dueRun(session: Session, name: string, now: Date): Promise<DueRun | undefined> {
	const open = await session.engine.open(name);
	return dueRunOf(session, open, session.engine.hostName(), await open.repository.listSnapshots(), now);
}

/** When `host` is next due for the set, judged from `refs` (any snapshots of the repository). */
export async function dueRunOf(
	session: Session,
	open: OpenSet,
	host: string,
	refs: readonly SnapshotRef[],
	now: Date,
): Promise<DueRun | undefined> {
	const name = open.name;
	const schedule = open.set.schedule;
	if (!schedule) return undefined;
	const { container } = session.host;
	const allowedMisses = container.isBound(TOKENS.ScheduleAdvisor)
		? container.get<ScheduleAdvisor>(TOKENS.ScheduleAdvisor).allowedMisses(open.set)
		: 0;
	const last = refs.filter((r) => r.snapshot.set === name && r.snapshot.host === host).at(-1);
	if (!last) return { set: name, host, at: now, reason: "never backed up", overdue: true, missed: 0, allowedMisses };
	const lastTime = new Date(last.snapshot.time);
	const next = await nextAfter(session, open, lastTime);
	if (!next) return undefined;
	const rule =
		"every" in schedule ? `+ ${schedule.every}` : `then cron "${schedule.cron}"${schedule.tz ? ` (${schedule.tz})` : ""}`;
	if (next.getTime() > now.getTime()) {
		return {
			set: name,
			host,
			at: next,
			reason: `last snapshot ${day(lastTime)} ${rule}`,
			overdue: false,
			missed: 0,
			allowedMisses,
		};
	}
	let missed = 0;
	for (let at: Date | undefined = next; at && at.getTime() <= now.getTime() && missed < MAX_COUNTED; missed++) {
		at = await nextAfter(session, open, at);
	}
	const lapse =
		missed > allowedMisses
			? `; ${missed >= MAX_COUNTED ? "over 1000" : missed} scheduled runs missed, more than the planner's missedRuns (${allowedMisses}): some objects may no longer be locked`
			: "";
	return {
		set: name,
		host,
		at: now,
		reason: `overdue since ${day(next)} (last snapshot ${day(lastTime)})${lapse}`,
		overdue: true,
		missed,
		allowedMisses,
	};
}

/** The schedule's next run after `after`, as the planner computes it. */
async function nextAfter(session: Session, open: OpenSet, after: Date): Promise<Date | undefined> {
	const plan = await session.engine.plan({ ...session.engine.context("plan", open), startedAt: after }, open.destination);
	return plan.nextRun;
}
