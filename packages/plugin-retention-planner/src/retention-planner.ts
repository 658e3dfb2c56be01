import {
	addDays,
	DAY_MS,
	type LockExtension,
	type LockPlan,
	longestRetentionDays,
	type ObjectNeed,
	parseDuration,
	type RunContext,
	type RunPlan,
	type SetConfig,
} from "@holdfast/core";
import { type PlannerConfig, plannerKey } from "./planner-config.js";
import { type Schedule, scheduleOf } from "./schedule.js";

/** The slack of a generation when the set names none: a sixth of the retention, at most two weeks. */
export function defaultSlackDays(retentionDays: number): number {
	return Math.min(14, retentionDays / 6);
}

const HOUR_MS = 3_600_000;

/** The margin when the set names none: a tenth of the longest interval, between an hour and a day. */
export function defaultMarginMs(longestIntervalMs: number | undefined): number {
	if (longestIntervalMs === undefined) return HOUR_MS;
	return Math.min(DAY_MS, Math.max(HOUR_MS, longestIntervalMs / 10));
}

export interface ResolvedPlanner {
	readonly strategy: PlannerConfig["strategy"];
	readonly missedRuns: number;
	readonly slackMs: number;
	readonly marginMs: number;
	readonly schedule: Schedule | undefined;
	/** The longest gap between two scheduled runs over the coming year. */
	readonly longestIntervalMs: number | undefined;
}

export function plannerConfig(set: SetConfig, from: Date): ResolvedPlanner {
	const config = plannerKey(set);
	const schedule = scheduleOf(set.schedule);
	const longestIntervalMs = schedule ? longestInterval(schedule, from) : undefined;
	return {
		strategy: config.strategy,
		missedRuns: config.missedRuns,
		slackMs: (config.slackDays ?? defaultSlackDays(set.retention.days)) * DAY_MS,
		marginMs: config.margin ? parseDuration(config.margin, "planner.margin") : defaultMarginMs(longestIntervalMs),
		schedule,
		longestIntervalMs,
	};
}

/** The longest gap between consecutive runs over the year after `from` (cron schedules vary: months, DST). */
function longestInterval(schedule: Schedule, from: Date): number {
	let longest = 0;
	let at = schedule.next(from);
	const end = from.getTime() + 366 * DAY_MS;
	for (let i = 0; i < 10_000 && at.getTime() < end; i++) {
		const next = schedule.next(at);
		longest = Math.max(longest, next.getTime() - at.getTime());
		at = next;
	}
	return longest;
}

/**
 * Warnings about a schedule that cannot keep the promise, whatever the planner does: runs
 * further apart than the retention leave a time before each run when no snapshot is in its
 * window, and a retention plus slack beyond the destination's cap is cut to the cap.
 */
export function scheduleWarnings(set: SetConfig, resolved: ResolvedPlanner, maxRetentionDays: number): string[] {
	const warnings: string[] = [];
	const retentionMs = set.retention.days * DAY_MS;
	if (resolved.longestIntervalMs !== undefined) {
		const reach = resolved.longestIntervalMs * (1 + resolved.missedRuns) + resolved.marginMs;
		if (reach > retentionMs) {
			warnings.push(
				`runs up to ${formatSpan(resolved.longestIntervalMs)} apart${resolved.missedRuns ? ` (with ${resolved.missedRuns} missed)` : ""}, plus a ${formatSpan(resolved.marginMs)} margin, exceed the ${set.retention.days}-day retention: before each run no snapshot is in its window; run more often or keep longer`,
			);
		}
	}
	const longest = longestRetentionDays(set.retention);
	if (longest + resolved.slackMs / DAY_MS > maxRetentionDays) {
		warnings.push(
			`retention ${longest} days plus ${formatSpan(resolved.slackMs)} of slack exceeds the destination's cap of ${maxRetentionDays} days: locks stop at the cap, so extensions come more often`,
		);
	}
	return warnings;
}

/**
 * The look-ahead: from the schedule, when the next run will have finished, and so until when
 * every object the snapshots in their window use must stay locked; then how to get there on
 * this destination.
 */
export function planRun(plan: RunPlan, context: RunContext): RunPlan {
	const start = context.startedAt;
	const resolved = plannerConfig(context.set, start);
	const capabilities = context.repository.destination.capabilities;
	const canExtend = capabilities.lockExtension;
	const strategy = resolved.strategy === "auto" ? (canExtend ? "extend" : "reinclude") : resolved.strategy;
	if (strategy === "extend" && !canExtend) {
		throw new Error(
			`strategy "extend" needs a destination that can extend locks; ${context.repository.destination.description} cannot`,
		);
	}
	// The core set it from the snapshot's tier: the first backup of a week, month or year is kept longer.
	const protectUntil = plan.protectUntil;
	const cap = addDays(start, capabilities.maxRetentionDays).getTime();
	const nextRun = resolved.schedule?.next(start);
	let horizon = protectUntil;
	if (resolved.schedule && nextRun) {
		// Grace for missed runs: each one pushes the run that renews protection one interval later.
		let at = nextRun;
		for (let i = 0; i < resolved.missedRuns; i++) at = resolved.schedule.next(at);
		horizon = new Date(Math.min(cap, at.getTime() + resolved.marginMs));
	}
	const warnings = [...plan.warnings, ...scheduleWarnings(context.set, resolved, capabilities.maxRetentionDays)];
	const missed = missedRuns(resolved, plan.previousRun, start);
	if (missed > 0) {
		warnings.push(
			`${missed} scheduled run(s) missed since the last backup (${plan.previousRun?.toISOString()})` +
				(missed > resolved.missedRuns
					? `, more than planner.missedRuns (${resolved.missedRuns}) allows: some locks may have lapsed before this run`
					: ""),
		);
	}
	const base = { ...plan, strategy, protectUntil, horizon, warnings, ...(nextRun ? { nextRun } : {}) };
	if (strategy === "extend") {
		// Generations: lock to the need plus a slack, so an object is touched once per slack period.
		const until = new Date(Math.min(cap, protectUntil.getTime() + resolved.slackMs));
		return { ...base, lock: { mode: plan.lock.mode, until: new Date(Math.max(until.getTime(), protectUntil.getTime())) } };
	}
	return {
		...base,
		lock: { mode: plan.lock.mode, until: new Date(Math.max(protectUntil.getTime(), horizon.getTime())) },
		reuseMinLock: horizon,
	};
}

/** Scheduled runs that should have started (and had their margin to finish) between the last backup and now. */
function missedRuns(resolved: ResolvedPlanner, previousRun: Date | undefined, now: Date): number {
	if (!resolved.schedule || !previousRun) return 0;
	let missed = 0;
	for (let at = resolved.schedule.next(previousRun); at.getTime() + resolved.marginMs < now.getTime() && missed < 10_000; ) {
		missed++;
		at = resolved.schedule.next(at);
	}
	return missed;
}

/**
 * Share of a pack's bytes that must be dead before repacking is weighed against extending:
 * below it, the transfer is not worth what it saves.
 */
const REPACK_MIN_DEAD_SHARE = 0.3;
/**
 * What moving a byte costs, as days of storing it: the read, the upload and the new object.
 * The copy also doubles the live bytes until the old pack's lock ends, which is counted apart.
 */
const REPACK_TRANSFER_DAYS = 7;

/**
 * Keeps every object that a snapshot in its window needs locked long enough. An object is
 * short when its lock ends before what this run must guarantee: its whole need under
 * `extend`; under `reinclude` its need, but no further than the horizon, since the next run
 * renews again. Short packs are extended, or their live blobs copied into new packs (always
 * under `reinclude`; under `extend` when the pack is mostly dead and copying is cheaper than
 * keeping the dead bytes); short index objects are extended, or their packs listed again;
 * short config and key copies are extended, or written anew.
 */
export function planProtection(lockPlan: LockPlan, plan: RunPlan, context: RunContext): LockPlan {
	const resolved = plannerConfig(context.set, context.startedAt);
	const now = context.startedAt.getTime();
	const cap = addDays(context.startedAt, context.repository.destination.capabilities.maxRetentionDays).getTime();
	const extend = plan.strategy === "extend";
	const target = (until: Date) => (extend ? until.getTime() : Math.min(until.getTime(), plan.horizon.getTime()));
	const lockOf = (need: ObjectNeed) => need.lockUntil?.getTime() ?? 0;
	const isShort = (need: ObjectNeed, until = need.until) => lockOf(need) < target(until);
	const extensionTo = (until: number) => new Date(Math.max(until, Math.min(cap, until + resolved.slackMs)));
	const extensions: LockExtension[] = [...lockPlan.extensions];
	const extendObject = (need: ObjectNeed, until: number) => {
		extensions.push({
			key: need.key,
			...(need.versionId ? { versionId: need.versionId } : {}),
			from: need.lockUntil,
			to: extensionTo(until),
			mode: plan.lock.mode,
			reason: `needed until ${new Date(until).toISOString().slice(0, 10)}`,
		});
	};
	/**
	 * A copy's lock: what its blob needs (under reinclude at least the horizon, under extend
	 * plus the slack), rounded up to a bucket so the copies of one run share a few packs.
	 */
	const bucket = Math.max(DAY_MS, (context.set.retention.days * DAY_MS) / 8);
	const copyLock = (until: Date) => {
		const wanted = extend ? extensionTo(until.getTime()).getTime() : Math.max(until.getTime(), plan.horizon.getTime());
		return new Date(Math.min(cap, Math.max(wanted, Math.ceil(wanted / bucket) * bucket)));
	};
	const renewals = [...lockPlan.renewals];
	const relist = [...lockPlan.relist];
	let renewMetadata = lockPlan.renewMetadata;
	const warnings: string[] = [];
	/** Per index object: the latest need of the blobs that stay where they are. */
	const indexNeeds = new Map<string, number>();
	const renewedPacks = new Set<string>();

	for (const pack of lockPlan.needs.packs.values()) {
		let staying = pack.live;
		if (isShort(pack)) {
			const lock = lockOf(pack);
			const deadBytes = Math.max(0, pack.size - pack.liveBytes);
			const copyReaches = (until: Date) => copyLock(until).getTime() >= target(until);
			let copy: typeof pack.live = [];
			if (!extend) copy = pack.live.filter((b) => lock < target(b.until));
			else if (pack.size > 0 && deadBytes / pack.size >= REPACK_MIN_DEAD_SHARE && pack.live.every((b) => copyReaches(b.until))) {
				// Extended, the dead bytes stay at least one more retention period: every run pushes the need on.
				const keepDeadCost = deadBytes * context.set.retention.days * DAY_MS;
				const copyCost = pack.liveBytes * (Math.max(0, lock - now) + REPACK_TRANSFER_DAYS * DAY_MS);
				if (copyCost < keepDeadCost) copy = pack.live;
			}
			for (const blob of copy) {
				renewals.push({
					id: blob.id,
					from: pack.key,
					lock: { mode: plan.lock.mode, until: copyLock(blob.until) },
					reason: `lock of ${pack.key.slice(0, 16)}… ends before ${new Date(target(blob.until)).toISOString().slice(0, 10)}`,
				});
			}
			if (copy.length > 0) renewedPacks.add(pack.key);
			const copied = new Set(copy.map((b) => b.id));
			staying = pack.live.filter((b) => !copied.has(b.id));
			if (extend && staying.length > 0) extendObject(pack, pack.until.getTime());
		}
		if (staying.length > 0 && pack.indexKey) {
			const until = Math.max(...staying.map((b) => b.until.getTime()));
			indexNeeds.set(pack.indexKey, Math.max(indexNeeds.get(pack.indexKey) ?? 0, until));
		}
	}
	for (const need of lockPlan.needs.objects.values()) {
		const until = need.kind === "index" ? indexNeeds.get(need.key) : need.until.getTime();
		if (until === undefined || !isShort(need, new Date(until))) continue;
		if (extend) {
			extendObject(need, until);
			continue;
		}
		if (need.kind === "index") {
			for (const pack of lockPlan.needs.packs.values()) {
				if (pack.indexKey === need.key && !renewedPacks.has(pack.key)) relist.push(pack.key);
			}
		} else if (need.kind === "config" || need.kind === "key") renewMetadata = true;
		else warnings.push(`${need.key}: its lock ends before its window does, and this destination cannot extend it`);
	}
	for (const warning of warnings) context.logger.warn(warning);
	return { ...lockPlan, extensions, renewals, relist: [...new Set(relist)], renewMetadata };
}

function formatSpan(ms: number): string {
	if (ms >= DAY_MS) return `${Number((ms / DAY_MS).toFixed(1))} d`;
	return `${Number((ms / HOUR_MS).toFixed(1))} h`;
}
