import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A key as the fake B2 native API knows it: its secret and what it may do. */
export interface FakeB2Key {
	readonly secret: string;
	readonly capabilities: readonly string[];
	/** The bucket the key is restricted to; none: every bucket. */
	readonly bucket?: string;
	readonly namePrefix?: string;
}

/** Capabilities of keys as B2 makes them. */
export const B2_CAPABILITIES = {
	master: [
		"listKeys",
		"writeKeys",
		"deleteKeys",
		"listAllBucketNames",
		"listBuckets",
		"readBuckets",
		"writeBuckets",
		"deleteBuckets",
		"readBucketRetentions",
		"writeBucketRetentions",
		"readBucketEncryption",
		"writeBucketEncryption",
		"listFiles",
		"readFiles",
		"shareFiles",
		"writeFiles",
		"deleteFiles",
		"readFileLegalHolds",
		"writeFileLegalHolds",
		"readFileRetentions",
		"writeFileRetentions",
		"bypassGovernance",
	],
	/** What `b2 key create --bucket B backup listBuckets,listFiles,readFiles,writeFiles,...` gives. */
	backupOnly: [
		"listBuckets",
		"readBuckets",
		"readBucketRetentions",
		"listFiles",
		"readFiles",
		"writeFiles",
		"readFileRetentions",
		"writeFileRetentions",
	],
	groom: ["listBuckets", "listFiles", "readFiles", "deleteFiles", "readFileRetentions"],
} as const;

/**
 * B2's native API as far as `holdfast doctor` uses it: `b2_authorize_account` (v3), which
 * answers a key's capabilities and bucket restriction to HTTP Basic auth with the key.
 */
export class FakeB2NativeApi {
	readonly calls: { path: string; keyId: string | undefined }[] = [];
	#server: Server | undefined;

	constructor(private readonly keys: Map<string, FakeB2Key> = new Map()) {}

	get url(): string {
		const address = this.#server?.address() as AddressInfo | undefined;
		if (!address) throw new Error("the fake B2 native API is not started");
		return `http://127.0.0.1:${address.port}`;
	}

	setKey(keyId: string, key: FakeB2Key): this {
		this.keys.set(keyId, key);
		return this;
	}

	async start(): Promise<this> {
		this.#server = createServer((req, res) => {
			const path = new URL(req.url ?? "/", "http://b2").pathname;
			const [keyId, secret] = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64")
				.toString()
				.split(":", 2);
			this.calls.push({ path, keyId });
			const send = (status: number, body: unknown) => {
				res.writeHead(status, { "content-type": "application/json" });
				res.end(JSON.stringify(body));
			};
			if (path !== "/b2api/v3/b2_authorize_account")
				return send(404, { status: 404, code: "not_found", message: `no such API: ${path}` });
			const key = keyId ? this.keys.get(keyId) : undefined;
			if (!key || key.secret !== secret) return send(401, { status: 401, code: "unauthorized", message: "" });
			send(200, {
				accountId: "fake-account",
				authorizationToken: "fake-token",
				applicationKeyExpirationTimestamp: null,
				apiInfo: {
					storageApi: {
						infoType: "storageApi",
						apiUrl: this.url,
						downloadUrl: this.url,
						s3ApiUrl: this.url,
						recommendedPartSize: 100_000_000,
						absoluteMinimumPartSize: 5_000_000,
						allowed: {
							buckets: key.bucket ? [{ id: `id-${key.bucket}`, name: key.bucket }] : null,
							capabilities: key.capabilities,
							namePrefix: key.namePrefix ?? null,
						},
					},
				},
			});
		});
		await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
		return this;
	}

	async stop(): Promise<void> {
		await new Promise<void>((resolve) => {
			this.#server?.closeAllConnections();
			this.#server?.close(() => resolve());
		});
	}
}
