/**
 * `holdfast ls latest | head -1`: the reader left, so stop quietly as every Unix tool does,
 * instead of an unhandled EPIPE with a stack trace. Any other failure to write the output
 * (`>/dev/full`, a full disk) is said once on stderr; the command finishes its work, since
 * stopping a backup halfway helps no one, and exits 1 because its report was lost.
 */
export function endQuietlyOnClosedPipe(): void {
	let failed = false;
	for (const stream of [process.stdout, process.stderr]) {
		stream.on("error", (error: NodeJS.ErrnoException) => {
			if (error.code === "EPIPE") process.exit(0);
			if (failed) return;
			failed = true;
			if (stream === process.stdout) {
				process.stderr.write(
					`holdfast: cannot write the output (${error.code ?? error.message}); the command goes on without it\n`,
				);
			}
			process.on("exit", () => {
				if (!process.exitCode) process.exitCode = 1;
			});
		});
	}
}
