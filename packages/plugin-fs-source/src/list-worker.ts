/**
 * The lister's thread (folder-lister.ts). Given the walk where it stands, it goes on ahead of
 * it: it lists the folders the walk will enter, in the order the walk will enter them, with
 * the walk's own rules (walk-filter.ts), and posts each listing as it is made. It keeps at
 * most LEAD_FOLDERS listings (and LEAD_ENTRIES entries) ahead of what the walk has taken.
 */
import { workerData } from "node:worker_threads";
import { FolderReader, isFailure } from "./folder-reader.js";
import {
	type AheadFolder,
	encodeListing,
	type ListerData,
	type ListingMessage,
	SHARED,
	type WalkRequest,
} from "./lister-protocol.js";
import { identityOf, WalkFilter } from "./walk-filter.js";

const LEAD_FOLDERS = 64;
const LEAD_ENTRIES = 16 * 1024;
const SLASH = Buffer.from("/");

const { options, shared, port } = workerData as ListerData;
const reader = new FolderReader(options);
/** Listings posted in the current walk, and their entries. */
let posted = 0;
let postedEntries = 0;

// One walk at a time (one per root), in the order asked.
let walks = Promise.resolve();
port.on("message", (request: WalkRequest) => {
	walks = walks
		.then(async () => {
			try {
				await walkAhead(request);
			} finally {
				// Whatever stopped it: a walk waiting for its next listing learns there is none, and reads for itself.
				const end: ListingMessage = { walk: request.walk, end: true };
				port.postMessage(end);
			}
		})
		.catch(() => undefined);
});
Atomics.store(shared, SHARED.up, 1);

async function walkAhead(request: WalkRequest): Promise<void> {
	posted = 0;
	postedEntries = 0;
	const filter = new WalkFilter(request.rules);
	const ancestors = new Set<string>([request.rootIdentity]);
	const stack: { readonly identity: string; readonly folders: readonly AheadFolder[]; at: number }[] = [];
	for (const { identity, folders } of request.open) {
		stack.push({ identity, folders, at: 0 });
		if (identity) ancestors.add(identity);
	}
	while (stack.length > 0) {
		const open = stack.at(-1) as (typeof stack)[number];
		if (open.at === open.folders.length) {
			stack.pop();
			ancestors.delete(open.identity);
			continue;
		}
		const folder = open.folders[open.at++] as AheadFolder;
		const rel = Buffer.from(folder.rel.buffer, folder.rel.byteOffset, folder.rel.length);
		// As the walk decides (fs-source.ts): passed by, or a loop back to a folder it is in.
		if (filter.passedBy(rel, folder.info, request.rootDevice)) continue;
		const identity = identityOf(folder.info);
		if (ancestors.has(identity)) continue;
		if (!waitForRoom(request.walk)) return;
		// Its own copy in each message: a Buffer cut from Node's pool would send the whole pool with it.
		const relCopy = new Uint8Array(rel);
		const abs = Buffer.from(folder.abs.buffer, folder.abs.byteOffset, folder.abs.length);
		let listing: Awaited<ReturnType<FolderReader["read"]>>;
		try {
			listing = await reader.read(abs);
		} catch (error) {
			const { code, message } = error as NodeJS.ErrnoException;
			const failed: ListingMessage = { walk: request.walk, rel: relCopy, error: { code, message: String(message ?? error) } };
			port.postMessage(failed);
			posted++;
			continue;
		}
		const { message, transfer } = encodeListing(request.walk, relCopy, listing);
		port.postMessage(message, transfer);
		posted++;
		postedEntries += listing.names.length;
		const below: AheadFolder[] = [];
		listing.names.forEach((name, i) => {
			const info = listing.stats[i];
			if (!info || isFailure(info) || info.type !== "dir") return;
			below.push({
				rel: rel.length === 0 ? name : Buffer.concat([rel, SLASH, name]),
				abs: Buffer.concat([abs, SLASH, name]),
				info,
			});
		});
		stack.push({ identity, folders: below, at: 0 });
		ancestors.add(identity);
	}
}

/** Waits while this far ahead of the walk; false when the walk has moved past this one, or the lister stopped. */
function waitForRoom(walk: number): boolean {
	for (;;) {
		if (Atomics.load(shared, SHARED.walk) !== walk) return false;
		const taken = Atomics.load(shared, SHARED.taken);
		if (posted - taken < LEAD_FOLDERS && postedEntries - Atomics.load(shared, SHARED.takenEntries) < LEAD_ENTRIES) return true;
		Atomics.wait(shared, SHARED.taken, taken, 100);
	}
}
