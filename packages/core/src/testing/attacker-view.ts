import {
	type ByteRange,
	type Destination,
	type DestinationCheck,
	type ListedObject,
	LockRefusedError,
	ObjectNotFoundError,
	type ObjectVersion,
} from "../destination/destination.js";

/**
 * The destination as an attacker holding the backup keys leaves it at instant `at`: every
 * version whose lock has ended (or that never had one) and every delete marker is gone. What
 * is left is what the store itself guarantees; a read-only view, so one destination can be
 * attacked at many instants without copying it.
 */
export function attackerView(destination: Destination, at: Date): Destination {
	const survives = (version: ObjectVersion) =>
		!version.isDeleteMarker && version.lock !== undefined && version.lock.until.getTime() > at.getTime();
	/**
	 * What survives, read once: the view never changes, and asking the store again for every
	 * read would make a test of many instants slow. Locks are asked per version where a
	 * listing omits them (S3).
	 */
	let table: Promise<Map<string, ObjectVersion[]>> | undefined;
	const survivors = () => {
		table ??= (async () => {
			const byKey = new Map<string, ObjectVersion[]>();
			for await (const listed of destination.listVersions("")) {
				const version = listed.lock || listed.isDeleteMarker ? listed : await destination.head(listed.key, listed.versionId);
				if (!version || !survives(version)) continue;
				const versions = byKey.get(version.key) ?? [];
				versions.push(version);
				byKey.set(version.key, versions);
			}
			return byKey;
		})();
		return table;
	};
	const surviving = async (prefix: string): Promise<ObjectVersion[]> =>
		[...(await survivors())].filter(([key]) => key.startsWith(prefix)).flatMap(([, versions]) => versions);
	const latest = async (key: string, versionId?: string): Promise<ObjectVersion | undefined> => {
		const versions = (await survivors()).get(key) ?? [];
		return versionId === undefined ? versions[0] : versions.find((v) => v.versionId === versionId);
	};
	const refuse = async (): Promise<never> => {
		throw new LockRefusedError(`${destination.description}: the attacker's view is read-only`);
	};
	return {
		description: `${destination.description} (as left by an attacker at ${at.toISOString()})`,
		capabilities: destination.capabilities,
		async preflight(): Promise<DestinationCheck> {
			return { ok: true, problems: [], notes: [] };
		},
		put: refuse,
		extendLock: refuse,
		deleteVersion: refuse,
		deleteMarker: refuse,
		async get(key: string, options: { versionId?: string; range?: ByteRange } = {}): Promise<Uint8Array> {
			const version = await latest(key, options.versionId);
			if (!version) throw new ObjectNotFoundError(key);
			return destination.get(key, { ...options, versionId: version.versionId });
		},
		async head(key: string, versionId?: string): Promise<ObjectVersion | undefined> {
			return latest(key, versionId);
		},
		async *list(prefix: string): AsyncIterable<ListedObject> {
			const seen = new Set<string>();
			for (const version of await surviving(prefix)) {
				if (seen.has(version.key)) continue;
				seen.add(version.key);
				yield { key: version.key, size: version.size, lastModified: version.lastModified };
			}
		},
		async *listVersions(prefix: string): AsyncIterable<ObjectVersion> {
			yield* await surviving(prefix);
		},
	};
}
