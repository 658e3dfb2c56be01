import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { HoldfastError, type InstanceEnvironment, type ScanOptions, type Source, type SourceEntry } from "@holdfast/core";

export interface CommandSourceOptions {
	/** The program and its arguments, run without a shell (`["pg_dump", "--format=custom", "shop"]`). */
	command: string[];
	/** The file's name in the snapshot (`shop.dump`). */
	name: string;
	/** Working folder of the command; relative to the config file's folder. */
	cwd?: string;
	/** Permission bits of the restored file; dumps are private by default. */
	mode?: number;
}

/** How much of the command's stderr is kept to explain a failure. */
const STDERR_TAIL = 4096;

/**
 * A source of one file: the standard output of a command, streamed from the child process into
 * the backup as it is produced, never written to disk. The command runs when the engine reads
 * the file, once per backup; if it cannot start or does not exit with 0, the backup fails
 * naming it, rather than store a truncated dump as if it were whole.
 */
export class CommandSource implements Source {
	readonly roots: readonly string[];

	constructor(
		private readonly options: CommandSourceOptions,
		private readonly environment: InstanceEnvironment,
	) {
		this.roots = [options.name];
	}

	async *scan(scan: ScanOptions): AsyncIterable<SourceEntry> {
		const { name } = this.options;
		const now = BigInt(this.environment.clock.now().getTime()) * 1_000_000n;
		yield {
			root: name,
			relPath: Buffer.alloc(0),
			type: "file",
			// Unknown until the command has run: the stored file records what was read.
			size: 0,
			mode: 0o100000 | (this.options.mode ?? 0o600),
			uid: process.getuid?.() ?? 0,
			gid: process.getgid?.() ?? 0,
			// A new output every run: the catalog never takes it for unchanged (unchanged chunks still deduplicate).
			mtimeNs: now,
			ctimeNs: now,
			// Distinct per name, so two commands' outputs are never taken for hard links of one file.
			inode: createHash("sha256").update(name).digest().readBigUInt64LE(0),
			device: 0n,
			read: () => this.#run(scan.signal),
		};
	}

	async *#run(signal: AbortSignal): AsyncIterable<Uint8Array> {
		const [program, ...args] = this.options.command as [string, ...string[]];
		const child = spawn(program, args, {
			cwd: resolve(this.environment.configDir, this.options.cwd ?? "."),
			env: this.environment.env,
			stdio: ["ignore", "pipe", "pipe"],
			signal,
		});
		let stderr = "";
		child.stderr.setEncoding("utf8");
		child.stderr.on("data", (text: string) => {
			stderr = (stderr + text).slice(-STDERR_TAIL);
		});
		const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done, fail) => {
			child.once("error", fail);
			child.once("close", (code, killedBy) => done({ code, signal: killedBy }));
		});
		exited.catch(() => undefined);
		let complete = false;
		try {
			// The pipe pauses the command while the backup is busy: memory stays bounded whatever it writes.
			// Each chunk is a buffer of its own, never reused: valid for as long as the contract asks and longer.
			for await (const chunk of child.stdout) yield chunk as Buffer;
			complete = true;
		} finally {
			if (!complete) child.kill();
		}
		const outcome = await exited.catch((error: NodeJS.ErrnoException) => {
			if (error.name === "AbortError") throw new HoldfastError("ABORTED", "backup aborted", { cause: error });
			const why = error.code === "ENOENT" ? "not found" : error.message;
			throw this.#failure(`cannot start ${JSON.stringify(program)}: ${why}`, error);
		});
		if (outcome.code !== 0) {
			const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
			const last = stderr.trim().split("\n").at(-1)?.trim();
			throw this.#failure(`${this.#shown()} ${how}${last ? `: ${last}` : ""}`);
		}
	}

	/** The command as a shell would take it, to copy into a terminal and try. */
	#shown(): string {
		return this.options.command
			.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`))
			.join(" ");
	}

	#failure(message: string, cause?: unknown): HoldfastError {
		return new HoldfastError("PLUGIN_FAILED", `[command-source] ${this.options.name}: ${message}`, { cause });
	}
}
