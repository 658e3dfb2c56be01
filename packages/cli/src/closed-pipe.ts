/**
 * `holdfast ls latest | head -1`: the reader left, so stop quietly as every Unix tool does,
 * instead of an unhandled EPIPE with a stack trace.
 */
export function endQuietlyOnClosedPipe(): void {
	for (const stream of [process.stdout, process.stderr]) {
		stream.on("error", (error: NodeJS.ErrnoException) => {
			if (error.code === "EPIPE") process.exit(0);
			throw error;
		});
	}
}
