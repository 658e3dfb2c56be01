/**
 * What holdfast knows about each S3-compatible provider: where it is, what it allows, and
 * which environment variables hold its keys by convention.
 */
export interface ProviderProfile {
	readonly name: "b2" | "s3";
	readonly maxRetentionDays: number;
	/** Endpoint from the region when none is configured (undefined: the SDK's AWS default). */
	endpointFor(region: string | undefined): string | undefined;
	readonly keyIdVariables: readonly string[];
	readonly secretVariables: readonly string[];
	/** Path-style addressing (bucket in the path, not the host name). */
	readonly pathStyle: boolean;
}

export const B2_PROFILE: ProviderProfile = {
	name: "b2",
	// B2 refuses retention beyond 3,000 days.
	maxRetentionDays: 3000,
	endpointFor: (region) => (region ? `https://s3.${region}.backblazeb2.com` : undefined),
	keyIdVariables: ["B2_APPLICATION_KEY_ID", "AWS_ACCESS_KEY_ID"],
	secretVariables: ["B2_APPLICATION_KEY", "AWS_SECRET_ACCESS_KEY"],
	pathStyle: false,
};

export const S3_PROFILE: ProviderProfile = {
	name: "s3",
	// AWS allows 100 years.
	maxRetentionDays: 36_500,
	endpointFor: () => undefined,
	keyIdVariables: ["AWS_ACCESS_KEY_ID"],
	secretVariables: ["AWS_SECRET_ACCESS_KEY"],
	pathStyle: false,
};
