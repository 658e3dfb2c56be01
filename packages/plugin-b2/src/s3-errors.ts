import { classifyFault } from "@holdfast/core";

/** The HTTP status and S3 error code of an SDK error, when it has them. */
export function statusOf(error: unknown): number | undefined {
	return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

export function codeOf(error: unknown): string | undefined {
	return (error as { Code?: string; name?: string })?.Code ?? (error as { name?: string })?.name;
}

/** `AccessDenied (HTTP 403)`: the store's answer, short. */
export function answerOf(error: unknown): string {
	const status = statusOf(error);
	return `${codeOf(error) ?? "error"}${status ? ` (HTTP ${status})` : ""}`;
}

/**
 * Rethrows a fault worth another try, so that a probe turns only answers that stand into
 * findings: the core's retry layer repeats the doctor (or the access probe) whole.
 */
export function passTransient(error: unknown): void {
	if (classifyFault(error) === "transient") throw error;
}
