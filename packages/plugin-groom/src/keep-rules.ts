import { parseDuration, type SnapshotRef } from "@holdfast/core";
import type { GroomConfig } from "./groom-config.js";

/** What decides which snapshots stay: the groom key without its scheduling and grace. */
export type KeepRules = Omit<GroomConfig, "afterBackup" | "graceHours">;

export interface KeepDecision {
	readonly ref: SnapshotRef;
	/** Why it stays; undefined means it leaves the set. */
	readonly keep?: string;
}

/**
 * The policy `match: retention`: a snapshot stays while its protect-until is ahead; keep
 * rules (last N, one per day/week/month/year, within a duration, by tag) hold it longer.
 * Rules count each host's snapshots apart (as restic groups by host): in a fleet sharing
 * one set, `keepLast: 7` keeps every machine's last seven, not the fleet's last seven.
 */
export function decideKeep(refs: readonly SnapshotRef[], config: KeepRules, now: Date): KeepDecision[] {
	const newestFirst = [...refs].sort((a, b) => b.snapshot.time.localeCompare(a.snapshot.time));
	const reasons = new Map<string, string>();
	const byHost = new Map<string, SnapshotRef[]>();
	for (const ref of newestFirst) {
		const group = byHost.get(ref.snapshot.host);
		if (group) group.push(ref);
		else byHost.set(ref.snapshot.host, [ref]);
	}
	for (const group of byHost.values()) keepOfOneHost(group, config, now, reasons);
	return newestFirst.map((ref) => {
		const reason = reasons.get(ref.id);
		return reason ? { ref, keep: reason } : { ref };
	});
}

/** The keep rules over one host's snapshots of the set, newest first; reasons collects what stays. */
function keepOfOneHost(newestFirst: readonly SnapshotRef[], config: KeepRules, now: Date, reasons: Map<string, string>): void {
	const hold = (ref: SnapshotRef, reason: string) => {
		if (!reasons.has(ref.id)) reasons.set(ref.id, reason);
	};
	for (const ref of newestFirst) {
		if (new Date(ref.snapshot.protectUntil).getTime() > now.getTime()) hold(ref, "inside its retention window");
	}
	for (const ref of newestFirst.slice(0, config.keepLast ?? 0)) hold(ref, "keep-last");
	const buckets: [keyof KeepRules, (d: Date) => string][] = [
		["keepDaily", (d) => d.toISOString().slice(0, 10)],
		["keepWeekly", (d) => isoWeek(d)],
		["keepMonthly", (d) => d.toISOString().slice(0, 7)],
		["keepYearly", (d) => d.toISOString().slice(0, 4)],
	];
	for (const [rule, bucketOf] of buckets) {
		const count = (config[rule] as number | undefined) ?? 0;
		const seen = new Set<string>();
		for (const ref of newestFirst) {
			if (seen.size >= count) break;
			const bucket = bucketOf(new Date(ref.snapshot.time));
			if (seen.has(bucket)) continue;
			seen.add(bucket);
			hold(ref, rule.replace(/^keep/, "keep-").toLowerCase());
		}
	}
	if (config.keepWithin) {
		const since = now.getTime() - parseDuration(config.keepWithin, "groom.keepWithin");
		for (const ref of newestFirst) if (new Date(ref.snapshot.time).getTime() >= since) hold(ref, "keep-within");
	}
	for (const ref of newestFirst) {
		if (ref.snapshot.tags.some((t) => config.keepTags?.includes(t))) hold(ref, "keep-tag");
	}
	// No machine loses its last backup to grooming: a schedule with gaps longer than the
	// retention, or a laptop away for a month, would otherwise leave nothing of it to restore.
	const newest = newestFirst[0];
	if (newest) hold(newest, "newest of its host in the set");
}

function isoWeek(date: Date): string {
	const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
	const day = d.getUTCDay() || 7;
	d.setUTCDate(d.getUTCDate() + 4 - day);
	const yearStart = new Date(Date.UTC(d.getUTCFullYear(), 0, 1));
	const week = Math.ceil(((d.getTime() - yearStart.getTime()) / 86_400_000 + 1) / 7);
	return `${d.getUTCFullYear()}-W${week}`;
}
