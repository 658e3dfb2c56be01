import { type FileHandle, open } from "node:fs/promises";

/** Lines queued by sync hooks are written once this much has gathered, or at the next flush. */
const FLUSH_BYTES = 64 * 1024;

/**
 * The audit log: JSON lines appended in the order they were added. Sync hooks (per file, per
 * object) cannot await, so they queue; async hooks flush, and a flush resolves once every line
 * added before it is in the file.
 */
export class AuditFile {
	#handle: Promise<FileHandle> | undefined;
	#queue: string[] = [];
	#queuedBytes = 0;
	#writing: Promise<void> = Promise.resolve();
	/** A background write that failed: reported by the next flush, so no line is lost unseen. */
	#failure: unknown;
	/** Lines a failed write could not append: written first by the next one, so none is lost. */
	#unwritten = "";

	constructor(readonly path: string) {}

	/** Opens the file for appending, once; rejects when it cannot be written. */
	open(): Promise<FileHandle> {
		if (!this.#handle) {
			const opening = open(this.path, "a");
			this.#handle = opening;
			// A file that could not be opened (a missing folder) is tried again next time.
			opening.catch(() => {
				if (this.#handle === opening) this.#handle = undefined;
			});
		}
		return this.#handle;
	}

	add(record: Record<string, unknown>): void {
		const line = `${JSON.stringify(record)}\n`;
		this.#queue.push(line);
		this.#queuedBytes += line.length;
		if (this.#queuedBytes >= FLUSH_BYTES) this.#write();
	}

	/** Resolves once every line added so far is in the file; rejects if any write failed. */
	async flush(): Promise<void> {
		this.#write();
		await this.#writing;
		const failure = this.#failure;
		this.#failure = undefined;
		if (failure !== undefined) throw failure;
	}

	async close(): Promise<void> {
		try {
			await this.flush();
		} finally {
			const handle = await this.#handle?.catch(() => undefined);
			this.#handle = undefined;
			await handle?.close();
		}
	}

	#write(): void {
		if (this.#queue.length === 0 && this.#unwritten === "") return;
		const chunk = this.#queue.join("");
		this.#queue = [];
		this.#queuedBytes = 0;
		this.#writing = this.#writing.then(async () => {
			const data = this.#unwritten + chunk;
			this.#unwritten = "";
			try {
				await (await this.open()).appendFile(data);
			} catch (error) {
				this.#unwritten = data;
				this.#failure ??= error;
			}
		});
	}
}
