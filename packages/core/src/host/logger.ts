export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
	debug(message: string): void;
	info(message: string): void;
	warn(message: string): void;
	error(message: string): void;
	/** A logger whose lines carry `[name]`, given to each plugin. */
	child(name: string): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (level: LogLevel, line: string) => void;

/** Writes to stderr so that stdout stays clean for `--json`. */
export const stderrSink: LogSink = (_level, line) => {
	process.stderr.write(`${line}\n`);
};

export class SinkLogger implements Logger {
	constructor(
		private readonly sink: LogSink = stderrSink,
		private readonly level: LogLevel = "info",
		private readonly prefix = "",
	) {}

	#write(level: LogLevel, message: string): void {
		if (ORDER[level] < ORDER[this.level]) return;
		const tag = level === "warn" ? "warning: " : level === "error" ? "error: " : "";
		this.sink(level, `${this.prefix}${tag}${message}`);
	}

	debug(message: string): void {
		this.#write("debug", message);
	}
	info(message: string): void {
		this.#write("info", message);
	}
	warn(message: string): void {
		this.#write("warn", message);
	}
	error(message: string): void {
		this.#write("error", message);
	}
	child(name: string): Logger {
		return new SinkLogger(this.sink, this.level, `${this.prefix}[${name}] `);
	}
}

/** Collects lines in memory; used by tests and by `--json` runs that report warnings. */
export class MemoryLogger extends SinkLogger {
	readonly lines: { level: LogLevel; line: string }[];

	constructor(level: LogLevel = "debug") {
		const lines: { level: LogLevel; line: string }[] = [];
		super((lvl, line) => lines.push({ level: lvl, line }), level);
		this.lines = lines;
	}
}
