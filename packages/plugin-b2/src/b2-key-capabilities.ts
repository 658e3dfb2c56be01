import type { DoctorFinding, KeyAccess, KeyRole } from "@holdfast/core";

export const B2_API_URL = "https://api.backblazeb2.com";

/** What B2 says a key may do: its capabilities, and the bucket and name prefix it is held to. */
export interface B2KeyAllowed {
	readonly capabilities: readonly string[];
	/** Bucket names the key is restricted to; undefined: every bucket of the account. */
	readonly buckets?: readonly string[];
	readonly namePrefix?: string;
}

/** Asks the B2 native API (`b2_authorize_account`) what a key may do. */
export async function authorizeB2Key(
	apiUrl: string,
	key: { accessKeyId: string; secretAccessKey: string },
): Promise<B2KeyAllowed> {
	const url = `${apiUrl.replace(/\/+$/, "")}/b2api/v3/b2_authorize_account`;
	const basic = Buffer.from(`${key.accessKeyId}:${key.secretAccessKey}`).toString("base64");
	const response = await fetch(url, { headers: { authorization: `Basic ${basic}` }, signal: AbortSignal.timeout(20_000) });
	const body = (await response.json().catch(() => ({}))) as AuthorizeAnswer;
	if (!response.ok)
		throw new Error(`b2_authorize_account: HTTP ${response.status} ${body.code ?? ""} ${body.message ?? ""}`.trim());
	// v3 groups by API suite; v2 answered `allowed` at the top with one bucket.
	const allowed = body.apiInfo?.storageApi?.allowed ?? body.allowed;
	if (!allowed || !Array.isArray(allowed.capabilities)) throw new Error("b2_authorize_account: no capabilities in the answer");
	const buckets = allowed.buckets
		? allowed.buckets.map((b) => b.name ?? b.id ?? "?")
		: allowed.bucketName || allowed.bucketId
			? [allowed.bucketName ?? allowed.bucketId ?? "?"]
			: undefined;
	return {
		capabilities: allowed.capabilities,
		...(buckets ? { buckets } : {}),
		...(allowed.namePrefix ? { namePrefix: allowed.namePrefix } : {}),
	};
}

interface AuthorizeAnswer {
	code?: string;
	message?: string;
	apiInfo?: { storageApi?: { allowed?: AllowedAnswer } };
	allowed?: AllowedAnswer;
}

interface AllowedAnswer {
	capabilities: string[];
	buckets?: { id?: string; name?: string | null }[] | null;
	bucketId?: string | null;
	bucketName?: string | null;
	namePrefix?: string | null;
}

/** What backups need on B2's S3 API: list, read, write, and extend locks. Grooming also deletes. */
const NEEDED: Record<KeyRole, readonly string[]> = {
	backup: ["listBuckets", "listFiles", "readFiles", "writeFiles", "readFileRetentions", "writeFileRetentions"],
	groom: ["listBuckets", "listFiles", "readFiles", "deleteFiles"],
};

/** Capabilities that let a thief of the backup key reach past the locks or beyond this bucket. */
const KEY_ADMIN = ["writeKeys", "deleteKeys"];
const BUCKET_SETTINGS = ["writeBucketRetentions", "deleteBuckets", "writeBuckets"];

export function accessFromB2(allowed: B2KeyAllowed): KeyAccess {
	return {
		canDelete: allowed.capabilities.includes("deleteFiles"),
		canBypassGovernance: allowed.capabilities.includes("bypassGovernance"),
		how: "b2_authorize_account",
	};
}

/** The doctor's rows for a B2 key: its scope, what it lacks, and each power it should not have. */
export function b2KeyFindings(allowed: B2KeyAllowed, target: { bucket: string; prefix: string; role: KeyRole }): DoctorFinding[] {
	const { role, bucket } = target;
	const label = (check: string) => (role === "backup" ? check : `${role} key: ${check}`);
	const has = (c: string) => allowed.capabilities.includes(c);
	const findings: DoctorFinding[] = [];
	if (!allowed.buckets) {
		findings.push({
			check: label("key scope"),
			status: "warn",
			detail: `not restricted to a bucket: it reaches every bucket of the account; make a key for ${bucket} only`,
		});
	} else if (!allowed.buckets.includes(bucket)) {
		findings.push({
			check: label("key scope"),
			status: "fail",
			detail: `restricted to ${allowed.buckets.join(", ")}, not ${bucket}: every call will be refused`,
		});
	} else {
		findings.push({ check: label("key scope"), status: "ok", detail: `restricted to bucket ${bucket}` });
	}
	if (allowed.namePrefix && !target.prefix.startsWith(allowed.namePrefix)) {
		findings.push({
			check: label("name prefix"),
			status: "fail",
			detail: `restricted to names under "${allowed.namePrefix}", but the repository is at "${target.prefix}"`,
		});
	}
	const missing = NEEDED[role].filter((c) => !has(c));
	findings.push(
		missing.length > 0
			? { check: label("needed capabilities"), status: "fail", detail: `missing ${missing.join(", ")}` }
			: { check: label("needed capabilities"), status: "ok", detail: NEEDED[role].join(", ") },
	);
	if (role === "backup") {
		findings.push(
			has("deleteFiles")
				? {
						check: "delete",
						status: "warn",
						detail:
							"YES (deleteFiles): this key can delete every version whose lock has ended and hide the rest; give backups a key without it",
					}
				: { check: "delete", status: "ok", detail: "no (no deleteFiles)" },
		);
	}
	findings.push(
		has("bypassGovernance")
			? {
					check: label("bypass governance"),
					status: "warn",
					detail: "YES (bypassGovernance): governance locks do not stop this key; no holdfast command needs it",
				}
			: { check: label("bypass governance"), status: "ok", detail: "no (no bypassGovernance)" },
	);
	const admin = KEY_ADMIN.filter(has);
	findings.push(
		admin.length > 0
			? {
					check: label("key admin"),
					status: "warn",
					detail: `YES (${admin.join(", ")}): this key can make keys, even one with every capability`,
				}
			: { check: label("key admin"), status: "ok", detail: "no (no writeKeys, deleteKeys)" },
	);
	const settings = BUCKET_SETTINGS.filter(has);
	findings.push(
		settings.length > 0
			? {
					check: label("bucket settings"),
					status: "warn",
					detail: `YES (${settings.join(", ")}): this key can change the bucket's retention or settings, or delete it once empty`,
				}
			: { check: label("bucket settings"), status: "ok", detail: "no (no writeBucketRetentions, deleteBuckets, writeBuckets)" },
	);
	return findings;
}
