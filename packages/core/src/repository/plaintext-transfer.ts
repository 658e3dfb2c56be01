/**
 * Plaintexts on their way back from a worker: a large one alone in its buffer is moved, small
 * ones are copied into one buffer together rather than moved one by one.
 */
export function gatherForTransfer(
	plains: readonly Uint8Array[],
	keep?: Uint8Array,
): { blobs: (Uint8Array | undefined)[]; transfer: ArrayBuffer[] } {
	const kept = (i: number) => keep === undefined || keep[i] !== 0;
	let smallTotal = 0;
	plains.forEach((plain, i) => {
		if (kept(i) && !ownsBuffer(plain)) smallTotal += plain.length;
	});
	const small = new Uint8Array(smallTotal);
	const transfer: ArrayBuffer[] = smallTotal > 0 ? [small.buffer] : [];
	let at = 0;
	const blobs = plains.map((plain, i) => {
		if (!kept(i)) return undefined;
		if (ownsBuffer(plain)) {
			transfer.push(plain.buffer as ArrayBuffer);
			return plain;
		}
		small.set(plain, at);
		at += plain.length;
		return small.subarray(at - plain.length, at);
	});
	return { blobs, transfer };
}

/** From this length a plaintext is moved, not copied: small ones may share a pool. */
const MOVED_FROM = 64 * 1024;
/**
 * Bytes a moved plaintext's buffer may hold beyond it: Brotli's output buffer is one byte
 * longer than the plaintext, and a stored blob is the opened body behind its codec byte.
 * Two plaintexts of MOVED_FROM bytes never share a buffer with so little room to spare.
 */
const MOVED_SLACK = 4096;

/** A large plaintext (nearly) alone in its buffer: moved with it, not copied into another. */
export function ownsBuffer(data: Uint8Array): boolean {
	return data.length >= MOVED_FROM && data.buffer.byteLength - data.byteLength <= MOVED_SLACK;
}
