import { ContainerModule, type DestinationType, definePlugin, TOKENS } from "@holdfast/core";
import { type FsDestinationOptions, FsStore } from "./fs-store.js";

export { FsDestination } from "./fs-destination.js";
export { type FsDestinationOptions, FsStore } from "./fs-store.js";

const fsDestinationType: DestinationType<FsDestinationOptions> = {
	type: "fs",
	optionsSchema: {
		type: "object",
		additionalProperties: false,
		required: ["path"],
		properties: {
			path: { type: "string", minLength: 1, description: "Folder of the repository (relative to the config file)" },
			lockExtension: { type: "boolean", default: true },
			maxRetentionDays: { type: "integer", minimum: 1 },
		},
	},
	// The raw store: it declares no Object Lock of its own, so the core composes its lock emulation.
	create: (options, environment) => new FsStore(options, environment.clock, environment.configDir),
};

export default definePlugin({
	name: "fs-destination",
	version: "0.1.0",
	engine: "^0.1.0",
	containerModule: new ContainerModule((options) => {
		options.bind(TOKENS.DestinationType).toConstantValue(fsDestinationType);
	}),
});
