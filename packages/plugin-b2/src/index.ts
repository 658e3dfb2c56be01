import { ContainerModule, type DestinationType, definePlugin, type JsonSchema, TOKENS } from "@holdfast/core";
import { S3Destination, type S3DestinationOptions } from "./s3-destination.js";
import { B2_PROFILE, type ProviderProfile, S3_PROFILE } from "./s3-profiles.js";

export { useContentMd5Only } from "./b2-compat-middleware.js";
export { type B2KeyAllowed, b2KeyFindings } from "./b2-key-capabilities.js";
export type { EnvKey, RoleCredentials } from "./s3-credentials.js";
export { S3Destination, type S3DestinationOptions } from "./s3-destination.js";
export { B2_PROFILE, type ProviderProfile, S3_PROFILE } from "./s3-profiles.js";

const envName = { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$" };

/** One key, by the names of the environment variables that hold it. */
const envKey = {
	type: "object",
	additionalProperties: false,
	required: ["keyIdEnv", "secretEnv"],
	properties: {
		keyIdEnv: { ...envName, description: "Name of the environment variable with the key ID" },
		secretEnv: { ...envName, description: "Name of the environment variable with the secret key" },
	},
};

function optionsSchema(requireRegion: boolean): JsonSchema {
	return {
		type: "object",
		additionalProperties: false,
		required: ["bucket"],
		// B2 needs its region (the endpoint is derived from it) unless the endpoint is given.
		...(requireRegion ? { anyOf: [{ required: ["region"] }, { required: ["endpoint"] }] } : {}),
		properties: {
			bucket: { type: "string", minLength: 3, maxLength: 63 },
			region: { type: "string", minLength: 1, description: "B2: the region of the bucket's endpoint, e.g. us-west-004" },
			endpoint: { type: "string", pattern: "^https?://" },
			prefix: { type: "string" },
			pathStyle: { type: "boolean" },
			keyIdEnv: { ...envName, description: "Name of the environment variable with the key ID" },
			secretEnv: { ...envName, description: "Name of the environment variable with the secret key" },
			credentials: {
				type: "object",
				additionalProperties: false,
				minProperties: 1,
				description: "A key per command class: backup (also check, restore) one that cannot delete; groom its own",
				properties: { backup: envKey, groom: envKey },
			},
			...(requireRegion
				? {
						b2ApiUrl: {
							type: "string",
							pattern: "^https?://",
							description: "B2's native API, which holdfast doctor asks what the key may do",
						},
					}
				: {}),
			connections: { type: "integer", minimum: 1, maximum: 256 },
			timeoutSeconds: {
				type: "integer",
				minimum: 1,
				description: "A request making no progress this long is retried (default 30)",
			},
			maxAttempts: {
				type: "integer",
				minimum: 1,
				maximum: 20,
				description: "At most this many attempts per call, within the set's retryBudget (the core retries)",
			},
		},
	};
}

function destinationType(type: "b2" | "s3", profile: ProviderProfile): DestinationType<S3DestinationOptions> {
	return {
		type,
		optionsSchema: optionsSchema(type === "b2"),
		create: (options, environment) => new S3Destination(options, profile, environment.env),
	};
}

export default definePlugin({
	name: "b2",
	version: "0.1.0",
	engine: "^0.1.0",
	containerModule: new ContainerModule((options) => {
		options.bind(TOKENS.DestinationType).toConstantValue(destinationType("b2", B2_PROFILE));
		options.bind(TOKENS.DestinationType).toConstantValue(destinationType("s3", S3_PROFILE));
	}),
});
