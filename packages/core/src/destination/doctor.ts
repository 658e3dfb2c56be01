/**
 * What `holdfast doctor` reports: one finding per check of the destination and its key, each
 * proven where the store lets it be, and said to be unproven where it does not.
 */
import { describeError } from "../host/errors.js";
import type { Destination, LockMode } from "./destination.js";

/** `unproven`: the store gave no way to tell without risking data; the detail says what is unknown. */
export type FindingStatus = "ok" | "warn" | "fail" | "unproven";

export interface DoctorFinding {
	/** Short name of what was checked: `Object Lock`, `delete versions`, `clock`. */
	readonly check: string;
	readonly status: FindingStatus;
	/** One line: what was seen and, when not ok, what to do. */
	readonly detail: string;
}

/** Which key a command class uses: backups, checks and restores never need one that can delete. */
export type KeyRole = "backup" | "groom";

export interface DoctorRequest {
	readonly retentionDays: number;
	readonly mode: LockMode;
	/** Only the key's checks: the bucket was examined already with the backup key. */
	readonly keyOnly?: boolean;
}

/** What a key may do, as far as could be told without a canary (each backup asks). */
export interface KeyAccess {
	/** Whether it may delete object versions; undefined when it could not be told. */
	readonly canDelete: boolean | undefined;
	readonly canBypassGovernance: boolean | undefined;
	/** How it was told: `b2_authorize_account`, `a delete of an absent version`. */
	readonly how: string;
}

export type DoctorVerdict = "ok" | "warn" | "fail";

/** The worst of the findings: one failure fails, one warning warns; unproven alone is ok. */
export function doctorVerdict(findings: readonly DoctorFinding[]): DoctorVerdict {
	if (findings.some((f) => f.status === "fail")) return "fail";
	if (findings.some((f) => f.status === "warn")) return "warn";
	return "ok";
}

/** Findings from a preflight, for a destination that has no doctor of its own. */
export function findingsFromPreflight(check: { problems: readonly string[]; notes: readonly string[] }): DoctorFinding[] {
	return [
		...check.problems.map((detail) => ({ check: "destination", status: "fail" as const, detail })),
		...check.notes.map((detail) => ({ check: "note", status: "ok" as const, detail })),
		...(check.problems.length === 0 ? [{ check: "destination", status: "ok" as const, detail: "preflight passed" }] : []),
	];
}

/** How long the probe's canary stays locked: long enough to be refused, short enough to cost nothing. */
const PROBE_LOCK_MS = 24 * 3_600_000;

/**
 * For a store that says it enforces Object Lock itself and has no doctor of its own: a proof,
 * not the claim. Under `doctor/`, a small unlocked canary must be deletable with this key (or
 * a refusal proves nothing: the key may just not delete), and a second one, locked in
 * compliance mode for a day, must then be refused. A store that deletes it would let every
 * backup be deleted, and the core, trusting the claim, would not have emulated the locks.
 */
export async function proveProviderLocks(destination: Destination, now: Date): Promise<DoctorFinding> {
	const base = `doctor/lock-probe-${now.getTime().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
	const check = "Object Lock";
	const body = Buffer.from("holdfast lock probe\n");
	const unproven = (what: string, error: unknown): DoctorFinding => ({
		check,
		status: "unproven",
		detail: `${what} (${describeError(error)}); locks are claimed, not proven`,
	});
	try {
		const free = await destination.put(`${base}-unlocked`, body);
		await destination.deleteVersion(`${base}-unlocked`, free.versionId);
	} catch (error) {
		return unproven("this key could not write and delete an unlocked canary, so a refusal would prove nothing", error);
	}
	const until = new Date(now.getTime() + PROBE_LOCK_MS);
	let versionId: string;
	try {
		({ versionId } = await destination.put(`${base}-locked`, body, { mode: "compliance", until }));
	} catch (error) {
		return unproven("could not write a locked canary", error);
	}
	try {
		await destination.deleteVersion(`${base}-locked`, versionId);
	} catch (error) {
		if ((error as { code?: string }).code === "LOCKED") {
			return {
				check,
				status: "ok",
				detail: "enforced by the store: a locked canary could not be deleted, an unlocked one could",
			};
		}
		return unproven("deleting a locked canary failed otherwise", error);
	}
	return {
		check,
		status: "fail",
		detail: `the store says it enforces Object Lock (enforcedByProvider) but deleted a version locked until ${until.toISOString()}: nothing it holds is protected`,
	};
}
