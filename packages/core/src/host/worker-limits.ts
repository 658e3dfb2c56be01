import type { ResourceLimits } from "node:worker_threads";

/**
 * Each worker thread's heap limits. The sealing and index workers allocate per blob or per
 * index object, and what they allocate dies before the next: a young generation of 3 MiB
 * (V8's is three semi-spaces of 1 MiB: two, and one for large objects) is all they use, where
 * V8 would grow one to 48 MiB per thread, resident all run long. Set per worker, not by the
 * `--max-semi-space-size` flag, which would hold the main thread to the same size, where V8
 * cannot grow it at all: a restore of 200,000 small files whose main thread was held so (into
 * tmpfs, interleaved) took 8.4–9.6 s and collected for a third of its main thread's time, and
 * 7.6–8.1 s with the main thread capped as it runs instead (RESTORE_YOUNG_GENERATION in the CLI).
 */
export const WORKER_RESOURCE_LIMITS: Readonly<ResourceLimits> = Object.freeze({ maxYoungGenerationSizeMb: 3 });
