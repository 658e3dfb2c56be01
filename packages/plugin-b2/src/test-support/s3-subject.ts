import { randomBytes } from "node:crypto";
import { composeDestination, SystemClock } from "@holdfast/core";
import { inject } from "vitest";
import { S3Destination, type S3DestinationOptions } from "../s3-destination.js";
import { B2_PROFILE, S3_PROFILE } from "../s3-profiles.js";
import { B2StrictProxy } from "./b2-strict-proxy.js";

export const s3 = inject("s3");

export function uniqueBucket(prefix = "hf"): string {
	return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

export const TEST_ENV = (): NodeJS.ProcessEnv => ({
	B2_APPLICATION_KEY_ID: s3?.accessKeyId,
	B2_APPLICATION_KEY: s3?.secretAccessKey,
	AWS_ACCESS_KEY_ID: s3?.accessKeyId,
	AWS_SECRET_ACCESS_KEY: s3?.secretAccessKey,
});

/**
 * A destination on the test server behind the B2-strict proxy, with the B2 profile:
 * everything the B2 plugin sends passes the checks B2 makes. Composed as the engine composes
 * it, so its transient faults are retried by the core's layer; `store` is the plugin's own.
 */
export async function b2Destination(options: Partial<S3DestinationOptions> = {}, profile: "b2" | "s3" = "b2") {
	if (!s3) throw new Error("no S3 test server");
	const proxy = await new B2StrictProxy(s3.endpoint).start();
	const store = new S3Destination(
		{ bucket: uniqueBucket(), endpoint: proxy.endpoint, maxAttempts: 6, ...options },
		profile === "b2" ? B2_PROFILE : S3_PROFILE,
		TEST_ENV(),
	);
	return { destination: composeDestination(store, { clock: new SystemClock() }), store, proxy };
}
