type SdkModules = typeof import("./sdk-modules.js");

/** The S3 client and its commands, and the HTTP handler it is given: one module names them all. */
export interface Sdk {
	readonly s3: SdkModules;
	readonly http: Pick<SdkModules, "NodeHttpHandler">;
}

let loading: Promise<Sdk> | undefined;

/** The AWS SDK, imported on first use: listing plugins or checking a config never loads it. */
export function loadSdk(): Promise<Sdk> {
	// The pinned SDK supports Node 20; its notice about future releases is not the user's
	// concern and would break the CLI's one-line errors.
	process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
	loading ??= import("./sdk-modules.js").then((modules) => ({ s3: modules, http: modules }));
	return loading;
}
