import { createHash } from "node:crypto";
import { createReadStream, type ReadStream } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { S3Client, S3ClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes } from "@aws-sdk/client-s3";
import {
	type ByteRange,
	type Destination,
	type DestinationCapabilities,
	type DestinationCheck,
	type DoctorFinding,
	type DoctorRequest,
	type FileUpload,
	HoldfastError,
	type KeyAccess,
	type KeyRole,
	type ListedObject,
	type ListOptions,
	type LockMode,
	LockRefusedError,
	type ObjectLock,
	ObjectNotFoundError,
	type ObjectVersion,
	type PreflightRequest,
} from "@holdfast/core";
import type { Command } from "@smithy/types";
import { useContentMd5Only } from "./b2-compat-middleware.js";
import { B2_API_URL } from "./b2-key-capabilities.js";
import { readBody } from "./s3-body.js";
import { defaultConflicts, readBucketLock, readVersioning } from "./s3-bucket-lock.js";
import {
	type KeySource,
	keySourceFor,
	missingKeyMessage,
	type RoleCredentials,
	readKey,
	sameKeySource,
} from "./s3-credentials.js";
import { type S3DoctorSubject, s3DoctorFindings, s3InspectAccess } from "./s3-doctor.js";
import { codeOf, statusOf } from "./s3-errors.js";
import type { ProviderProfile } from "./s3-profiles.js";
import { loadSdk, type Sdk } from "./sdk.js";

export interface S3DestinationOptions {
	readonly bucket: string;
	readonly region?: string;
	readonly endpoint?: string;
	/** Keys are stored under `prefix/` when set: several repositories can share a bucket. */
	readonly prefix?: string;
	readonly pathStyle?: boolean;
	/** Names of the environment variables holding the key; never the key itself. */
	readonly keyIdEnv?: string;
	readonly secretEnv?: string;
	/** A key per command class: `groom` one that may delete; `backup` (also check, restore) one that may not. */
	readonly credentials?: RoleCredentials;
	/** B2's native API, asked by `holdfast doctor` what the key may do (default https://api.backblazeb2.com). */
	readonly b2ApiUrl?: string;
	/** Connections open at once. */
	readonly connections?: number;
	/** A request on which nothing moves for this long is abandoned (and retried): a stalled server cannot hang a run. */
	readonly timeoutSeconds?: number;
	/** At most this many attempts per call, asked of the core's retry layer (which retries throttling, 5xx, dropped and stalled connections). */
	readonly maxAttempts?: number;
}

/** No request, however slowly it moves, runs longer than this. */
const REQUEST_DEADLINE_MS = 10 * 60_000;
/**
 * Ranged reads a restore keeps under way. Each waits a round trip and the server's first byte,
 * tens of milliseconds at a provider, and the restore holds 4 MiB for each. From the local
 * test server a mixed restore (scale 0.25) took 1.24–1.33 s with 8, 1.28–1.38 s with 4.
 */
const READS_IN_FLIGHT = 8;

const MODE: Record<LockMode, "COMPLIANCE" | "GOVERNANCE"> = { compliance: "COMPLIANCE", governance: "GOVERNANCE" };

/**
 * An S3 bucket with Object Lock: every object written locked (mode and retain-until on the
 * PUT, with Content-MD5), locks extended with PutObjectRetention, versions read and deleted
 * by ID. The store itself refuses to delete or shorten a locked version.
 *
 * It retries nothing: every SDK error keeps its HTTP status and `$retryable` mark as the
 * `cause` of the error thrown, so the core's retry layer (`composeDestination`) tells
 * throttling, 5xx and dropped connections from answers that stand.
 */
export class S3Destination implements Destination {
	readonly description: string;
	readonly capabilities: DestinationCapabilities;
	readonly maxAttempts: number | undefined;
	readonly #prefix: string;
	readonly #keySource: KeySource;
	#client: Promise<S3Client> | undefined;

	constructor(
		private readonly options: S3DestinationOptions,
		private readonly profile: ProviderProfile,
		private readonly env: NodeJS.ProcessEnv,
		/** Which of `credentials` this instance uses. */
		private readonly role: KeyRole = "backup",
	) {
		this.#keySource = keySourceFor(options, profile, role);
		this.#prefix = options.prefix ? `${options.prefix.replace(/\/+$/, "")}/` : "";
		this.description = `${profile.name}:${options.bucket}${this.#prefix ? `/${this.#prefix.slice(0, -1)}` : ""}`;
		this.maxAttempts = options.maxAttempts;
		this.capabilities = {
			enforcedByProvider: true,
			lockExtension: true,
			maxRetentionDays: profile.maxRetentionDays,
			// Each ranged GET waits a round trip and the server's first byte: more in flight keep the workers fed.
			readsInFlight: Math.min(READS_IN_FLIGHT, options.connections ?? 16),
			// Locked PUTs carry Content-MD5: a pack's comes from the worker that hashes it for its key.
			fileDigests: ["md5"],
			// Packs are far below the single-PUT limit; multipart is never used.
		};
	}

	/** The SDK client, made (and the SDK loaded) on first use. */
	client(): Promise<S3Client> {
		if (!this.#client) {
			const creating = loadSdk().then((sdk) => this.#createClient(sdk));
			// Missing credentials are the caller's error every time, not a cached failure.
			creating.catch(() => {
				if (this.#client === creating) this.#client = undefined;
			});
			this.#client = creating;
		}
		return this.#client;
	}

	#createClient({ s3, http }: Sdk): S3Client {
		const { options, profile, env } = this;
		const credentials = readKey(this.#keySource, env);
		if (!credentials) {
			throw new HoldfastError("USAGE", `${this.description}: ${missingKeyMessage(this.#keySource, this.role)}`);
		}
		const endpoint = options.endpoint ?? profile.endpointFor(options.region);
		const connections = options.connections ?? 16;
		const idle = (options.timeoutSeconds ?? 30) * 1000;
		// The pinned SDK supports Node 20; its notice about future releases is not the user's concern
		// and would break the one-line-error contract of the CLI.
		process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
		const client = new s3.S3Client({
			region: options.region ?? "us-east-1",
			...(endpoint ? { endpoint } : {}),
			forcePathStyle: options.pathStyle ?? (options.endpoint !== undefined || profile.pathStyle),
			credentials,
			// B2 and Ceph RGW refuse the SDK's default flexible checksums (HTTP 400 / 411).
			requestChecksumCalculation: "WHEN_REQUIRED",
			responseChecksumValidation: "WHEN_REQUIRED",
			// Retried by the core's layer against a time budget: the SDK's fixed count gives up during a minute's outage.
			maxAttempts: 1,
			// The SDK's own notes ("an error was encountered in a non-retryable streaming request") went to
			// console.warn, past --quiet and --json; every fault reaches the core, which retries and reports it.
			logger: SILENT_SDK_LOGGER,
			requestHandler: new http.NodeHttpHandler({
				connectionTimeout: 10_000,
				socketTimeout: idle,
				requestTimeout: Math.max(REQUEST_DEADLINE_MS, idle),
				throwOnRequestTimeout: true,
				httpAgent: new HttpAgent({ keepAlive: true, maxSockets: connections }),
				httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: connections }),
			}),
		});
		useContentMd5Only(client);
		// It only hands each request's input and output to the logger above, which drops them, and
		// first walks both against the operation's schema to mask what is secret: 20–30 ms of
		// the main thread per hundred requests. The retry layer's notes still go to that logger.
		client.middlewareStack.remove("loggerMiddleware");
		return client;
	}

	missingEnvironment(): readonly string[] {
		const missing = readKey(this.#keySource, this.env) ? [] : [missingKeyMessage(this.#keySource, this.role)];
		const groom = this.withKey("groom");
		if (groom && !readKey(groom.#keySource, this.env)) {
			missing.push(`${missingKeyMessage(groom.#keySource, "groom")}; needed only where groom runs`);
		}
		return missing;
	}

	withKey(role: KeyRole): S3Destination | undefined {
		if (role === this.role || sameKeySource(keySourceFor(this.options, this.profile, role), this.#keySource)) return undefined;
		return new S3Destination(this.options, this.profile, this.env, role);
	}

	doctor(request: DoctorRequest): Promise<DoctorFinding[]> {
		return s3DoctorFindings(this.#doctorSubject(), request);
	}

	inspectAccess(): Promise<KeyAccess> {
		return s3InspectAccess(this.#doctorSubject());
	}

	/** B2's own endpoints (or none: derived from the region); another host would be sent B2's key. */
	#endpointIsB2(): boolean {
		const endpoint = this.options.endpoint;
		return !endpoint || /\.backblazeb2\.com$/i.test(new URL(endpoint).hostname);
	}

	#doctorSubject(): S3DoctorSubject {
		return {
			description: this.description,
			profile: this.profile,
			bucket: this.options.bucket,
			prefix: this.#prefix,
			role: this.role,
			b2ApiUrl: this.options.b2ApiUrl ?? (this.#endpointIsB2() ? B2_API_URL : undefined),
			keySource: this.#keySource,
			key: () => readKey(this.#keySource, this.env),
			client: () => this.client(),
		};
	}

	#key(key: string): string {
		return `${this.#prefix}${key}`;
	}

	#unkey(stored: string): string {
		return stored.slice(this.#prefix.length);
	}

	async preflight(request: PreflightRequest): Promise<DestinationCheck> {
		const problems: string[] = [];
		const notes: string[] = [];
		const bucket = this.options.bucket;
		let exists = true;
		try {
			await this.#send((s3) => new s3.HeadBucketCommand({ Bucket: bucket }));
		} catch (error) {
			if (statusOf(error) !== 404) throw this.#fail(error, "check bucket", "");
			exists = false;
		}
		if (!exists) {
			if (!request.create) {
				return {
					ok: false,
					problems: [...problems, `bucket ${bucket} does not exist (holdfast init creates it with Object Lock)`],
					notes,
				};
			}
			const region = this.options.region;
			const needsLocation = this.profile.name === "s3" && !this.options.endpoint && region && region !== "us-east-1";
			await this.#send(
				(s3) =>
					new s3.CreateBucketCommand({
						Bucket: bucket,
						ObjectLockEnabledForBucket: true,
						...(needsLocation ? { CreateBucketConfiguration: { LocationConstraint: region as never } } : {}),
					}),
			).catch((error: unknown) => {
				throw this.#fail(error, `create bucket ${bucket}`, "");
			});
			notes.push(`created bucket ${bucket} with Object Lock`);
		}
		const client = await this.client();
		const lock = await readBucketLock(client, bucket).catch((error: unknown) => {
			throw this.#fail(error, "read Object Lock configuration", "");
		});
		if (!lock.enabled) problems.push(noLockMessage(bucket));
		const rule = lock.defaultRetention;
		if (rule) {
			notes.push(
				`bucket default retention ${rule.mode} ${rule.days} days applies only to objects written without a lock; holdfast locks each object itself`,
			);
			if (defaultConflicts(lock, request.mode))
				problems.push(`bucket ${bucket} has a COMPLIANCE default retention but the set asks for governance: make them agree`);
		}
		const versioning = await readVersioning(client, bucket);
		// Without Object Lock, versioning is the lesser problem: say only the one that matters.
		if (versioning !== "Enabled" && lock.enabled)
			problems.push(`bucket ${bucket}: versioning is ${versioning ?? "off"}; Object Lock needs it enabled`);
		return { ok: problems.length === 0, problems, notes };
	}

	async put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }> {
		try {
			const result = await this.#send(
				(s3) =>
					new s3.PutObjectCommand({
						Bucket: this.options.bucket,
						Key: this.#key(key),
						Body: body,
						ContentLength: body.byteLength,
						ContentMD5: createHash("md5").update(body).digest("base64"),
						...(lock ? { ObjectLockMode: MODE[lock.mode], ObjectLockRetainUntilDate: lock.until } : {}),
					}),
			);
			return { versionId: result.VersionId ?? "" };
		} catch (error) {
			throw this.#fail(error, "put", key);
		}
	}

	/**
	 * As `put`, streamed from a file the caller keeps (a pack assembled on disk), with its MD5,
	 * as Object Lock wants a checksum on every locked PUT: the one given, else read from the
	 * file first. Each call (a retry too) reads the file again from its start.
	 */
	async putFile({ key, path, size, lock, digests }: FileUpload): Promise<{ versionId: string }> {
		// A stream of nothing cannot be asked for (its last byte would be at -1).
		if (size === 0) return this.put(key, new Uint8Array(0), lock);
		let body: ReadStream | undefined;
		try {
			const md5 = digests?.md5 ?? (await fileMd5(path, size));
			// Pieces of 1 MiB: at 256 KiB each a 16 MiB pack took 64 socket writes, 0.3 s more CPU per 166 MiB.
			body = createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1024 * 1024 });
			const stream = body;
			const result = await this.#send(
				(s3) =>
					new s3.PutObjectCommand({
						Bucket: this.options.bucket,
						Key: this.#key(key),
						Body: stream,
						ContentLength: size,
						ContentMD5: md5,
						...(lock ? { ObjectLockMode: MODE[lock.mode], ObjectLockRetainUntilDate: lock.until } : {}),
					}),
			);
			return { versionId: result.VersionId ?? "" };
		} catch (error) {
			throw this.#fail(error, "put", key);
		} finally {
			body?.destroy();
		}
	}

	async get(key: string, options: { versionId?: string; range?: ByteRange } = {}): Promise<Uint8Array> {
		try {
			const { s3 } = await loadSdk();
			const command = new s3.GetObjectCommand({
				Bucket: this.options.bucket,
				Key: this.#key(key),
				...(options.versionId ? { VersionId: options.versionId } : {}),
				...(options.range ? { Range: `bytes=${options.range.offset}-${options.range.offset + options.range.length - 1}` } : {}),
			});
			const result = await (await this.client()).send(command);
			// The body is read within the call: a connection dropped mid-body fails the get, which is repeated whole.
			const bytes = await readBody(result.Body, result.ContentLength);
			if (result.ContentLength !== undefined && bytes.byteLength < result.ContentLength) {
				throw Object.assign(new Error(`the body ended after ${bytes.byteLength} of ${result.ContentLength} bytes`), {
					transient: true,
				});
			}
			return bytes;
		} catch (error) {
			throw this.#fail(error, "get", key);
		}
	}

	async head(key: string, versionId?: string): Promise<ObjectVersion | undefined> {
		try {
			const result = await this.#send(
				(s3) =>
					new s3.HeadObjectCommand({
						Bucket: this.options.bucket,
						Key: this.#key(key),
						...(versionId ? { VersionId: versionId } : {}),
					}),
			);
			const mode = result.ObjectLockMode === "GOVERNANCE" ? "governance" : "compliance";
			return {
				key,
				versionId: result.VersionId ?? "",
				size: result.ContentLength ?? 0,
				lastModified: result.LastModified ?? new Date(0),
				isDeleteMarker: false,
				isLatest: !versionId,
				...(result.ObjectLockRetainUntilDate ? { lock: { mode, until: new Date(result.ObjectLockRetainUntilDate) } } : {}),
			};
		} catch (error) {
			const status = statusOf(error);
			if (status === 404 || status === 405) return undefined;
			throw this.#fail(error, "head", key);
		}
	}

	async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListedObject> {
		let token: string | undefined;
		// Where a listing the retry layer resumes starts: only the first page needs it.
		const startAfter = options.startAfter === undefined ? undefined : this.#key(options.startAfter);
		do {
			const page = await this.#send(
				(s3) =>
					new s3.ListObjectsV2Command({
						Bucket: this.options.bucket,
						Prefix: this.#key(prefix),
						...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
					}),
			).catch((error: unknown) => {
				throw this.#fail(error, "list", prefix);
			});
			for (const object of page.Contents ?? []) {
				if (!object.Key) continue;
				yield { key: this.#unkey(object.Key), size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) };
			}
			token = page.IsTruncated ? page.NextContinuationToken : undefined;
		} while (token);
	}

	async *listVersions(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectVersion> {
		// A key marker without a version marker: the listing starts with the keys after it (on S3;
		// Ceph RGW also lists the marker's own versions, which are passed over here).
		const startAfter = options.startAfter === undefined ? undefined : this.#key(options.startAfter);
		let keyMarker = startAfter;
		let versionMarker: string | undefined;
		do {
			const page = await this.#send(
				(s3) =>
					new s3.ListObjectVersionsCommand({
						Bucket: this.options.bucket,
						Prefix: this.#key(prefix),
						...(keyMarker ? { KeyMarker: keyMarker } : {}),
						...(versionMarker ? { VersionIdMarker: versionMarker } : {}),
					}),
			).catch((error: unknown) => {
				throw this.#fail(error, "list versions", prefix);
			});
			const entries: ObjectVersion[] = [];
			for (const v of page.Versions ?? []) {
				if (!v.Key || v.Key === startAfter) continue;
				entries.push({
					key: this.#unkey(v.Key),
					versionId: v.VersionId ?? "",
					size: v.Size ?? 0,
					lastModified: v.LastModified ?? new Date(0),
					isDeleteMarker: false,
					isLatest: v.IsLatest ?? false,
				});
			}
			for (const m of page.DeleteMarkers ?? []) {
				if (!m.Key || m.Key === startAfter) continue;
				entries.push({
					key: this.#unkey(m.Key),
					versionId: m.VersionId ?? "",
					size: 0,
					lastModified: m.LastModified ?? new Date(0),
					isDeleteMarker: true,
					isLatest: m.IsLatest ?? false,
				});
			}
			entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : b.lastModified.getTime() - a.lastModified.getTime()));
			yield* entries;
			const truncated = page.IsTruncated;
			keyMarker = truncated ? page.NextKeyMarker : undefined;
			versionMarker = truncated ? page.NextVersionIdMarker : undefined;
		} while (keyMarker);
	}

	async extendLock(key: string, versionId: string, lock: ObjectLock): Promise<void> {
		try {
			await this.#send(
				(s3) =>
					new s3.PutObjectRetentionCommand({
						Bucket: this.options.bucket,
						Key: this.#key(key),
						VersionId: versionId,
						Retention: { Mode: MODE[lock.mode], RetainUntilDate: lock.until },
					}),
			);
		} catch (error) {
			throw this.#fail(error, "extend lock of", key);
		}
	}

	async deleteVersion(key: string, versionId: string, options: { bypassGovernance?: boolean } = {}): Promise<void> {
		try {
			await this.#send(
				(s3) =>
					new s3.DeleteObjectCommand({
						Bucket: this.options.bucket,
						Key: this.#key(key),
						VersionId: versionId,
						...(options.bypassGovernance ? { BypassGovernanceRetention: true } : {}),
					}),
			);
		} catch (error) {
			throw this.#fail(error, "delete", key);
		}
	}

	async deleteMarker(key: string): Promise<void> {
		try {
			await this.#send((s3) => new s3.DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.#key(key) }));
		} catch (error) {
			throw this.#fail(error, "delete", key);
		}
	}

	async close(): Promise<void> {
		const client = this.#client;
		this.#client = undefined;
		(await client?.catch(() => undefined))?.destroy();
	}

	/** One call, sent once: the core's retry layer repeats the whole destination call on a transient fault. */
	async #send<Input extends ServiceInputTypes, Output extends ServiceOutputTypes>(
		make: (s3: Sdk["s3"]) => Command<ServiceInputTypes, Input, ServiceOutputTypes, Output, S3ClientResolvedConfig>,
	): Promise<Output> {
		const command = make((await loadSdk()).s3);
		return (await this.client()).send(command);
	}

	/** One line a user can act on; locks and absence become the contract's error types. */
	#fail(error: unknown, operation: string, key: string): Error {
		if (error instanceof HoldfastError) return error;
		const status = statusOf(error);
		const code = codeOf(error) ?? (error instanceof Error ? error.name : "Error");
		const detail = error instanceof Error ? error.message : String(error);
		// Said as what to fix: a missing bucket is not a missing object, and a refused key is not "UnknownError".
		if (code === "NoSuchBucket") {
			return new HoldfastError(
				"DESTINATION",
				`${this.description}: bucket ${this.options.bucket} does not exist${this.options.endpoint ? ` at ${this.options.endpoint}` : ""}: check its name and region, or let "holdfast init" create it`,
				{ cause: error },
			);
		}
		// A HEAD has no body to name the cause: a 403 there is this key refused, or not let into the bucket.
		const refusedHead = status === 403 && operation === "check bucket";
		if (code === "SignatureDoesNotMatch" || code === "InvalidAccessKeyId" || code === "InvalidToken" || refusedHead) {
			const names = [...this.#keySource.keyIdNames, ...this.#keySource.secretNames].filter((n) => this.env[n]);
			return new HoldfastError(
				"DESTINATION",
				`${this.description}: the store refused the key (${refusedHead ? "on bucket " + this.options.bucket : code}, HTTP ${status ?? "?"}): check ${names.join(" and ") || "the key"}${refusedHead ? ", and that it may use this bucket" : ""}`,
				{ cause: error },
			);
		}
		if (status === 404 || status === 405 || code === "NoSuchKey" || code === "NoSuchVersion") {
			return new ObjectNotFoundError(key, { cause: error });
		}
		if (status === 403 && (operation === "delete" || operation === "extend lock of" || /lock|retention/i.test(detail))) {
			return new LockRefusedError(`${this.description}: ${operation} ${key}: refused (${code}: ${detail})`, { cause: error });
		}
		return new HoldfastError(
			"DESTINATION",
			`${this.description}: ${operation}${key ? ` ${key}` : ""}: ${code}${status ? ` (HTTP ${status})` : ""}: ${detail}`,
			{
				cause: error,
			},
		);
	}
}

const SILENT_SDK_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function noLockMessage(bucket: string): string {
	return `bucket ${bucket} has no Object Lock, which can only be enabled when a bucket is created: create a new bucket with Object Lock (or let "holdfast init" create it) and point the set at it`;
}

/** Content-MD5 (base64) of the first `size` bytes of a file, read in pieces; a file shorter than that is refused. */
async function fileMd5(path: string, size: number): Promise<string> {
	const hash = createHash("md5");
	let read = 0;
	for await (const piece of createReadStream(path, { start: 0, end: size - 1, highWaterMark: 256 * 1024 })) {
		hash.update(piece as Buffer);
		read += (piece as Buffer).length;
	}
	if (read !== size) throw new Error(`${path}: holds ${read} bytes where ${size} were written`);
	return hash.digest("base64");
}
