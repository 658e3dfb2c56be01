import type { S3Client } from "@aws-sdk/client-s3";
import type { LockMode } from "@holdfast/core";
import { codeOf, statusOf } from "./s3-errors.js";
import { loadSdk } from "./sdk.js";

/** A bucket's Object Lock as preflight and doctor both judge it. */
export interface BucketLock {
	readonly enabled: boolean;
	/** The retention objects written without a lock get; holdfast locks each object itself. */
	readonly defaultRetention?: { readonly mode: string; readonly days: number };
}

/** Reads the bucket's Object Lock configuration; a bucket that has none reads as not enabled. */
export async function readBucketLock(client: S3Client, bucket: string): Promise<BucketLock> {
	const { s3 } = await loadSdk();
	try {
		const answer = await client.send(new s3.GetObjectLockConfigurationCommand({ Bucket: bucket }));
		const rule = answer.ObjectLockConfiguration?.Rule?.DefaultRetention;
		return {
			enabled: answer.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled",
			...(rule ? { defaultRetention: { mode: rule.Mode ?? "?", days: rule.Days ?? (rule.Years ?? 0) * 365 } } : {}),
		};
	} catch (error) {
		if (codeOf(error) === "ObjectLockConfigurationNotFoundError" || statusOf(error) === 404) return { enabled: false };
		throw error;
	}
}

/** A COMPLIANCE default with a governance set: objects written without a lock would be locked harder than planned. */
export function defaultConflicts(lock: BucketLock, mode: LockMode): boolean {
	return lock.defaultRetention?.mode === "COMPLIANCE" && mode === "governance";
}

export async function readVersioning(client: S3Client, bucket: string): Promise<string | undefined> {
	const { s3 } = await loadSdk();
	const answer = await client.send(new s3.GetBucketVersioningCommand({ Bucket: bucket }));
	return answer.Status;
}
