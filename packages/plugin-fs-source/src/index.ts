import { ContainerModule, definePlugin, type SourceType, TOKENS } from "@holdfast/core";
import { FsSource, type FsSourceOptions } from "./fs-source.js";

export { FsSource, type FsSourceOptions } from "./fs-source.js";

const fsSourceType: SourceType<FsSourceOptions> = {
	type: "fs",
	optionsSchema: {
		type: "object",
		additionalProperties: false,
		required: ["path"],
		properties: {
			path: {
				oneOf: [
					{ type: "string", minLength: 1 },
					{ type: "array", minItems: 1, items: { type: "string", minLength: 1 } },
				],
			},
			exclude: { type: "array", items: { type: "string" }, description: "gitignore patterns relative to the root" },
			excludeLargerThan: { type: "integer", minimum: 0 },
			excludeCaches: { type: "boolean", default: true },
			oneFileSystem: { type: "boolean", default: false },
			followSymlinks: { type: "boolean", default: false },
			statConcurrency: { type: "integer", minimum: 1, maximum: 256 },
		},
	},
	create: (options, environment) => new FsSource(options, environment.configDir, environment.leaveOut ?? [], environment.logger),
};

export default definePlugin({
	name: "fs-source",
	version: "0.1.0",
	engine: "^0.1.0",
	containerModule: new ContainerModule((options) => {
		options.bind(TOKENS.SourceType).toConstantValue(fsSourceType);
	}),
});
