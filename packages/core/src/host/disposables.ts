export interface Disposable {
	dispose(): void | Promise<void>;
}

/**
 * Resources are released in reverse order of acquisition, also after a failure;
 * a failing dispose does not stop the others, and the first error is rethrown.
 */
export class DisposableStack {
	readonly #items: Disposable[] = [];
	#disposed = false;

	add<T extends Disposable>(item: T): T {
		if (this.#disposed) throw new Error("cannot add to a disposed stack");
		this.#items.push(item);
		return item;
	}

	defer(fn: () => void | Promise<void>): void {
		this.add({ dispose: fn });
	}

	async dispose(): Promise<void> {
		if (this.#disposed) return;
		this.#disposed = true;
		let first: unknown;
		for (const item of this.#items.reverse()) {
			try {
				await item.dispose();
			} catch (error) {
				first ??= error;
			}
		}
		if (first !== undefined) throw first;
	}
}
