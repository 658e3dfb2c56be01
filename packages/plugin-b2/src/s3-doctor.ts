import { createHash, randomBytes } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";
import type { DoctorFinding, DoctorRequest, KeyAccess, KeyRole } from "@holdfast/core";
import { accessFromB2, authorizeB2Key, b2KeyFindings } from "./b2-key-capabilities.js";
import { type BucketLock, defaultConflicts, readBucketLock, readVersioning } from "./s3-bucket-lock.js";
import { type KeySource, missingKeyMessage } from "./s3-credentials.js";
import { answerOf, codeOf, passTransient, statusOf } from "./s3-errors.js";
import type { ProviderProfile } from "./s3-profiles.js";
import { loadSdk } from "./sdk.js";

/** What the doctor needs of an S3 destination: its client, its key, and where it writes. */
export interface S3DoctorSubject {
	readonly description: string;
	readonly profile: ProviderProfile;
	readonly bucket: string;
	/** The repository's key prefix, "" or ending in "/". */
	readonly prefix: string;
	readonly role: KeyRole;
	/** B2's native API; undefined when the endpoint is not B2's and none was configured. */
	readonly b2ApiUrl: string | undefined;
	readonly keySource: KeySource;
	key(): { accessKeyId: string; secretAccessKey: string } | undefined;
	client(): Promise<S3Client>;
}

const DAY_MS = 86_400_000;
/** The order the bucket's rows are shown in: what it is, then what holdfast asks of it. */
const BUCKET_ROWS = ["bucket", "Object Lock", "versioning", "default retention", "retention cap", "clock"];
/** Within this the clocks agree, given the Date header's whole seconds and the trip's time. */
const CLOCK_OK_MS = 60_000;

/**
 * Checks the bucket and proves what the key may do. Nothing it writes can destroy anything:
 * the canary is a new object under `doctor/` locked for a day, and the delete probe names a
 * version of a key that never existed.
 */
export async function s3DoctorFindings(subject: S3DoctorSubject, request: DoctorRequest): Promise<DoctorFinding[]> {
	const key = subject.key();
	if (subject.role !== "backup" && request.keyOnly) {
		if (!key)
			return [
				{
					check: `${subject.role} key`,
					status: "ok",
					detail: `not on this machine (${subject.keySource.keyIdNames.join(", ")} unset): right where backups run; ${subject.role} runs where it is`,
				},
			];
		return keyFindings(subject, { canary: false, probes: true });
	}
	if (!key)
		return [
			{ check: "key", status: "fail", detail: `${subject.description}: ${missingKeyMessage(subject.keySource, subject.role)}` },
		];
	const findings: DoctorFinding[] = [];
	const bucket = await bucketFindings(subject, request, findings);
	findings.sort((a, b) => BUCKET_ROWS.indexOf(a.check) - BUCKET_ROWS.indexOf(b.check));
	// Probes need the bucket; the canary needs its lock.
	// Probes need the bucket, the canary its lock; B2's own answer needs neither.
	if (bucket !== "unusable") findings.push(...(await keyFindings(subject, { canary: bucket === "locked", probes: true })));
	else if (subject.profile.name === "b2") findings.push(...(await keyFindings(subject, { canary: false, probes: false })));
	return findings;
}

/** Each backup asks this: B2's own answer, or elsewhere a delete of an absent version (nothing to destroy). */
export async function s3InspectAccess(subject: S3DoctorSubject): Promise<KeyAccess> {
	const key = subject.key();
	if (!key) return { canDelete: undefined, canBypassGovernance: undefined, how: "no key" };
	if (subject.profile.name === "b2" && subject.b2ApiUrl) {
		try {
			return accessFromB2(await authorizeB2Key(subject.b2ApiUrl, key));
		} catch {
			// B2's native API out of reach: the S3 probe below still tells deletes.
		}
	}
	try {
		const canDelete = await mayDeleteVersions(subject);
		return { canDelete, canBypassGovernance: undefined, how: "a delete of a version that does not exist was not refused" };
	} catch (error) {
		passTransient(error);
		// A store that answers the probe oddly leaves the question open; it never stops a backup.
		return { canDelete: undefined, canBypassGovernance: undefined, how: `the probe got ${answerOf(error)}` };
	}
}

async function bucketFindings(
	subject: S3DoctorSubject,
	request: DoctorRequest,
	findings: DoctorFinding[],
): Promise<"locked" | "unlocked" | "unusable"> {
	const { s3 } = await loadSdk();
	const client = await subject.client();
	const bucket = subject.bucket;
	const cap = subject.profile.maxRetentionDays;
	const capOf = subject.profile.name === "b2" ? "B2's" : "the provider's";
	findings.push(
		request.retentionDays > cap
			? {
					check: "retention cap",
					status: "fail",
					detail: `retention ${request.retentionDays} days exceeds ${capOf} cap of ${cap} days`,
				}
			: { check: "retention cap", status: "ok", detail: `${request.retentionDays} days, within ${capOf} cap of ${cap} days` },
	);
	const head = new s3.HeadBucketCommand({ Bucket: bucket });
	let serverDate: string | undefined;
	let sentAt = 0;
	head.middlewareStack.add(
		(next) => async (args) => {
			sentAt = Date.now();
			try {
				const out = await next(args);
				serverDate = headerOf(out.response, "date");
				return out;
			} catch (error) {
				serverDate = headerOf((error as { $response?: unknown }).$response, "date");
				throw error;
			}
		},
		{ step: "deserialize", name: "holdfastServerDate", priority: "low" },
	);
	let exists = true;
	try {
		await client.send(head);
	} catch (error) {
		passTransient(error);
		if (statusOf(error) === 404) exists = false;
		else {
			findings.push({ check: "bucket", status: "fail", detail: `${bucket}: cannot be read with this key: ${answerOf(error)}` });
			return "unusable";
		}
	}
	const receivedAt = Date.now();
	if (serverDate) findings.push(clockFinding(new Date(serverDate).getTime() - (sentAt + receivedAt) / 2));
	else findings.push({ check: "clock", status: "unproven", detail: "the server sent no Date header to compare with" });
	if (!exists) {
		findings.push({
			check: "bucket",
			status: "fail",
			detail: `${bucket} does not exist (holdfast init creates it with Object Lock)`,
		});
		return "unusable";
	}
	findings.push({ check: "bucket", status: "ok", detail: `${bucket} exists` });
	let lock: BucketLock;
	try {
		lock = await readBucketLock(client, bucket);
	} catch (error) {
		passTransient(error);
		findings.push({ check: "Object Lock", status: "fail", detail: `cannot read the configuration: ${answerOf(error)}` });
		return "unusable";
	}
	const rule = lock.defaultRetention;
	if (rule) {
		const conflict = defaultConflicts(lock, request.mode);
		const days = `${rule.days} day${rule.days === 1 ? "" : "s"}`;
		findings.push({
			check: "default retention",
			status: conflict ? "fail" : "ok",
			detail: conflict
				? `COMPLIANCE ${days}, but the set locks in governance mode: make them agree`
				: `${rule.mode} ${days}: applies only to objects written without a lock; holdfast locks each object itself`,
		});
	} else if (lock.enabled) {
		findings.push({ check: "default retention", status: "ok", detail: "none: holdfast locks each object itself" });
	}
	findings.push(
		lock.enabled
			? { check: "Object Lock", status: "ok", detail: "enabled" }
			: {
					check: "Object Lock",
					status: "fail",
					detail:
						"off, and it can only be enabled when a bucket is created: create a new bucket with Object Lock (holdfast init does)",
				},
	);
	const versioning = await readVersioning(client, bucket);
	findings.push(
		versioning === "Enabled"
			? { check: "versioning", status: "ok", detail: "enabled" }
			: { check: "versioning", status: "fail", detail: `${versioning ?? "off"}; Object Lock needs it enabled` },
	);
	return lock.enabled ? "locked" : "unlocked";
}

function clockFinding(skewMs: number): DoctorFinding {
	const seconds = Math.round(Math.abs(skewMs) / 1000);
	const side = skewMs > 0 ? "behind" : "ahead of";
	if (Math.abs(skewMs) <= CLOCK_OK_MS)
		return { check: "clock", status: "ok", detail: `within ${Math.max(seconds, 1)} s of the server's Date` };
	const what = `this machine's clock is ${formatSpan(Math.abs(skewMs))} ${side} the server's: locks are dated from it, so they end that much ${skewMs > 0 ? "earlier" : "later"} than planned`;
	return { check: "clock", status: Math.abs(skewMs) >= DAY_MS ? "fail" : "warn", detail: `${what}; set the clock (NTP)` };
}

function formatSpan(ms: number): string {
	if (ms >= 2 * 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
	if (ms >= 2 * 60_000) return `${Math.round(ms / 60_000)} min`;
	return `${Math.round(ms / 1000)} s`;
}

function headerOf(response: unknown, name: string): string | undefined {
	const headers = (response as { headers?: Record<string, string> } | undefined)?.headers;
	if (!headers) return undefined;
	const found = Object.keys(headers).find((h) => h.toLowerCase() === name);
	return found ? headers[found] : undefined;
}

/** On B2, the native API's answer; elsewhere (or when it cannot be asked), what probes prove. */
async function keyFindings(subject: S3DoctorSubject, options: { canary: boolean; probes: boolean }): Promise<DoctorFinding[]> {
	const findings: DoctorFinding[] = [];
	const key = subject.key();
	let told = false;
	if (subject.profile.name === "b2" && !subject.b2ApiUrl) {
		findings.push({
			check: label(subject, "capabilities"),
			status: "unproven",
			detail: "B2's native API was not asked: the endpoint is not B2's (name it with b2ApiUrl)",
		});
	} else if (subject.profile.name === "b2" && key && subject.b2ApiUrl) {
		try {
			const allowed = await authorizeB2Key(subject.b2ApiUrl, key);
			findings.push(...b2KeyFindings(allowed, { bucket: subject.bucket, prefix: subject.prefix, role: subject.role }));
			told = true;
		} catch (error) {
			findings.push({
				check: label(subject, "capabilities"),
				status: "unproven",
				detail: `${(error as Error).message} (at ${subject.b2ApiUrl})${options.probes ? ": proving with probes instead" : ""}`,
			});
		}
	}
	if (options.canary) findings.push(...(await canaryFindings(subject, { probes: !told })));
	else if (!told && options.probes) findings.push(await deleteProbeFinding(subject));
	return findings;
}

function label(subject: S3DoctorSubject, check: string): string {
	return subject.role === "backup" ? check : `${subject.role} key: ${check}`;
}

/**
 * A DELETE of a version of a key that never existed: refused (403) when the key may not
 * delete versions; otherwise the store looked, found nothing, and destroyed nothing.
 */
async function mayDeleteVersions(subject: S3DoctorSubject): Promise<boolean> {
	const { s3 } = await loadSdk();
	const client = await subject.client();
	const absent = `${subject.prefix}doctor/absent-${randomBytes(8).toString("hex")}`;
	try {
		await client.send(new s3.DeleteObjectCommand({ Bucket: subject.bucket, Key: absent, VersionId: "null" }));
		return true;
	} catch (error) {
		const status = statusOf(error);
		if (status === 403) return false;
		if (status === 404 || codeOf(error) === "NoSuchVersion" || codeOf(error) === "NoSuchKey") return true;
		throw error;
	}
}

async function deleteProbeFinding(subject: S3DoctorSubject): Promise<DoctorFinding> {
	const check = label(subject, "delete versions");
	try {
		const may = await mayDeleteVersions(subject);
		if (subject.role === "backup")
			return may
				? {
						check,
						status: "warn",
						detail:
							"YES: a delete of an absent version under doctor/ was not refused; this key can delete every version whose lock has ended",
					}
				: { check, status: "ok", detail: "no: a delete of an absent version under doctor/ was refused (AccessDenied)" };
		return may
			? { check, status: "ok", detail: "yes, as grooming needs (a delete of an absent version under doctor/ was not refused)" }
			: {
					check,
					status: "fail",
					detail: "no: a delete under doctor/ was refused (AccessDenied); grooming cannot delete anything",
				};
	} catch (error) {
		passTransient(error);
		return { check, status: "unproven", detail: `the probe got ${answerOf(error)}` };
	}
}

/**
 * A new object under `doctor/`, locked (governance) for a day: proves writing and locking,
 * reading the lock back, and extending it. With `probes`, also whether the key may delete,
 * hide (delete marker: the locked version stays) or shorten a governance lock by bypassing it.
 */
async function canaryFindings(subject: S3DoctorSubject, options: { probes: boolean }): Promise<DoctorFinding[]> {
	const { s3 } = await loadSdk();
	const client = await subject.client();
	const findings: DoctorFinding[] = [];
	const Bucket = subject.bucket;
	const stamp = new Date().toISOString().replace(/[:.]/g, "-");
	const Key = `${subject.prefix}doctor/canary-${stamp}-${randomBytes(3).toString("hex")}`;
	const shown = Key.slice(subject.prefix.length);
	const body = Buffer.from("holdfast doctor canary: locked for a day; the backup key never deletes it\n");
	const until = new Date(Math.ceil((Date.now() + DAY_MS) / 1000) * 1000);
	let versionId: string;
	try {
		const put = await client.send(
			new s3.PutObjectCommand({
				Bucket,
				Key,
				Body: body,
				ContentLength: body.byteLength,
				ContentMD5: createHash("md5").update(body).digest("base64"),
				ObjectLockMode: "GOVERNANCE",
				ObjectLockRetainUntilDate: until,
			}),
		);
		versionId = put.VersionId ?? "";
		findings.push({ check: "write + lock", status: "ok", detail: `wrote the canary ${shown}, locked for a day` });
	} catch (error) {
		passTransient(error);
		findings.push({
			check: "write + lock",
			status: "fail",
			detail: `a locked write under doctor/ failed: ${answerOf(error)}; backups need both`,
		});
		return findings;
	}
	try {
		const head = await client.send(new s3.HeadObjectCommand({ Bucket, Key, VersionId: versionId }));
		const kept = head.ObjectLockMode === "GOVERNANCE" && head.ObjectLockRetainUntilDate?.getTime() === until.getTime();
		findings.push(
			kept
				? { check: "lock read back", status: "ok", detail: `governance until ${until.toISOString()}, as written` }
				: {
						check: "lock read back",
						status: "fail",
						detail: `the store shows ${head.ObjectLockMode ?? "no lock"}${head.ObjectLockRetainUntilDate ? ` until ${head.ObjectLockRetainUntilDate.toISOString()}` : ""}: objects would not be protected as planned${subject.profile.name === "b2" ? " (B2 shows locks only to keys with readFileRetentions)" : ""}`,
					},
		);
	} catch (error) {
		passTransient(error);
		findings.push({ check: "lock read back", status: "fail", detail: `the canary cannot be read: ${answerOf(error)}` });
	}
	const extended = new Date(until.getTime() + 60_000);
	try {
		await client.send(
			new s3.PutObjectRetentionCommand({
				Bucket,
				Key,
				VersionId: versionId,
				Retention: { Mode: "GOVERNANCE", RetainUntilDate: extended },
			}),
		);
		findings.push({ check: "extend lock", status: "ok", detail: "the canary's lock was extended by a minute" });
	} catch (error) {
		passTransient(error);
		findings.push({
			check: "extend lock",
			status: "fail",
			detail: `refused: ${answerOf(error)}; backups extend locks to keep old data protected`,
		});
	}
	if (!options.probes) return findings;
	findings.push(await deleteProbeFinding(subject));
	try {
		await client.send(new s3.DeleteObjectCommand({ Bucket, Key }));
		findings.push({
			check: "delete markers",
			status: "warn",
			detail: "YES: it put a delete marker on the canary (its locked version stays); this key can hide every object",
		});
	} catch (error) {
		passTransient(error);
		findings.push(
			statusOf(error) === 403
				? { check: "delete markers", status: "ok", detail: "no: a delete marker on the canary was refused (AccessDenied)" }
				: { check: "delete markers", status: "unproven", detail: `the probe got ${answerOf(error)}` },
		);
	}
	try {
		await client.send(
			new s3.PutObjectRetentionCommand({
				Bucket,
				Key,
				VersionId: versionId,
				BypassGovernanceRetention: true,
				Retention: { Mode: "GOVERNANCE", RetainUntilDate: until },
			}),
		);
		findings.push({
			check: "bypass governance",
			status: "warn",
			detail: "YES: it shortened the canary's governance lock by a minute; governance locks do not stop this key",
		});
	} catch (error) {
		passTransient(error);
		findings.push(
			statusOf(error) === 403
				? { check: "bypass governance", status: "ok", detail: "no: shortening the canary's governance lock was refused" }
				: { check: "bypass governance", status: "unproven", detail: `the probe got ${answerOf(error)}` },
		);
	}
	findings.push({
		check: "other rights",
		status: "unproven",
		detail: `whether this key may change the bucket's policy or settings, make keys, or delete the bucket: the S3 API cannot tell without doing it; probes ran under ${subject.prefix}doctor/ only`,
	});
	return findings;
}
