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

/** A large plaintext alone in its buffer: moved, not copied. Small ones may share a pool. */
function ownsBuffer(data: Uint8Array): boolean {
	return data.length >= 64 * 1024 && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
}
