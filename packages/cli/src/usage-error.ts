/**
 * A mistake in what the user typed: one line, exit 2. Kept free of @holdfast/core so that
 * parsing the command line never loads the engine.
 */
export class UsageError extends Error {
	readonly code = "USAGE";
	constructor(message: string) {
		super(message);
		this.name = "UsageError";
	}
}
