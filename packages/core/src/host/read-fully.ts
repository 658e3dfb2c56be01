import { readSync } from "node:fs";

/** Reads into all of `into` from `position`, as many calls as it takes; returns the bytes read, fewer only where the file ends. */
export function readFully(fd: number, into: Uint8Array, position: number): number {
	let done = 0;
	while (done < into.length) {
		const read = readSync(fd, into, done, into.length - done, position + done);
		if (read === 0) break;
		done += read;
	}
	return done;
}
