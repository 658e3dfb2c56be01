import { ContainerModule, definePlugin, type SourceType, TOKENS } from "@holdfast/core";
import { CommandSource, type CommandSourceOptions } from "./command-source.js";

export { CommandSource, type CommandSourceOptions } from "./command-source.js";

/** `{ type: command, command: [pg_dump, shop], name: shop.sql }` in a set's `sources`. */
const commandSourceType: SourceType<CommandSourceOptions> = {
	type: "command",
	optionsSchema: {
		type: "object",
		additionalProperties: false,
		required: ["command", "name"],
		properties: {
			command: {
				type: "array",
				minItems: 1,
				items: { type: "string" },
				description: "the program and its arguments, run without a shell; its standard output is backed up",
			},
			name: {
				type: "string",
				minLength: 1,
				pattern: "^[^/]+$",
				description: "the file's name in the snapshot",
			},
			cwd: { type: "string", minLength: 1, description: "working folder, relative to the config file" },
			mode: { type: "integer", minimum: 0, maximum: 4095, default: 384, description: "permission bits (default 0600)" },
		},
	},
	create: (options, environment) => new CommandSource(options, environment),
};

/**
 * A third-party source plugin written only against `@holdfast/core`: it contributes the source
 * type `command`, which backs up what a command writes to its standard output (a database
 * dump) as one file, streamed.
 */
export default definePlugin({
	name: "command-source",
	version: "0.1.0",
	engine: "^0.1.0",
	containerModule: new ContainerModule((options) => {
		options.bind(TOKENS.SourceType).toConstantValue(commandSourceType);
	}),
});
