/**
 * The AWS SDK, imported on first use: listing plugins or checking a config never loads it
 * (about a quarter of a second of start-up).
 */
export type Sdk = typeof import("./sdk-modules.js");

let loading: Promise<Sdk> | undefined;

export function loadSdk(): Promise<Sdk> {
	// The pinned SDK supports Node 20; its notice about future releases is not the user's
	// concern and would break the CLI's one-line errors.
	process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
	loading ??= import("./sdk-modules.js");
	return loading;
}
