import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const REJECTED = /^(x-amz-checksum-.+|x-amz-sdk-checksum-algorithm)$/i;

export interface ProxyStats {
	requests: number;
	rejected: { header: string; method: string; url: string }[];
	missingMd5: number;
	faultsInjected: number;
	byMethod: Record<string, number>;
	/** Requests by class, faulted or not. */
	byClass: Record<RequestClass, number>;
	/** Every fault a plan injected, in order: what a failing seed did. */
	injected: { n: number; class: RequestClass; key: string; fault: string }[];
}

/** What an S3 request does, as fault schedules and B2's billing see it. */
export type RequestClass = "list" | "get" | "head" | "put" | "retention" | "delete" | "bucket";

export const REQUEST_CLASSES: readonly RequestClass[] = ["list", "get", "head", "put", "retention", "delete"];

/** One request as a fault plan sees it: its number (from 1, every class), class and object key. */
export interface ProxiedRequest {
	readonly n: number;
	readonly class: RequestClass;
	readonly method: string;
	/** The object key without the bucket ("" for bucket requests). */
	readonly key: string;
}

/**
 * What the proxy does to one request instead of (or before) passing it on:
 * - `status`: the store's "try later" answer (503 SlowDown, 500 InternalError, 429);
 * - `reset-request`: half the request body is read, then the connection is destroyed (the store never sees it);
 * - `reset-response`: the store does the work; the answer's headers and half its body are sent,
 *   then the connection is destroyed (an answer with no body is lost whole);
 * - `slow`: the request waits `ms` before it is passed on.
 */
export type Fault =
	| { readonly kind: "status"; readonly status: 500 | 503 | 429 }
	| { readonly kind: "reset-request" }
	| { readonly kind: "reset-response" }
	| { readonly kind: "slow"; readonly ms: number };

/** Decides the fault, if any, for each request: a seeded schedule, or a test's own rule. */
export interface FaultPlan {
	decide(request: ProxiedRequest): Fault | undefined;
}

/**
 * An HTTP proxy in front of the S3 test server that answers as B2 does: HTTP 400
 * "Unsupported header '…' received for this API call." to checksum headers B2 rejects, and
 * 400 to a locked PUT without Content-MD5. It can also answer 503 SlowDown on demand, as a
 * busy B2 does, to exercise retries, and, given a fault plan (`inject`), fault each request by
 * its class: "try later" answers, connections reset mid-request or mid-answer, slow answers.
 */
export class B2StrictProxy {
	readonly stats: ProxyStats = {
		requests: 0,
		rejected: [],
		missingMd5: 0,
		faultsInjected: 0,
		byMethod: {},
		byClass: { list: 0, get: 0, head: 0, put: 0, retention: 0, delete: 0, bucket: 0 },
		injected: [],
	};
	#server: Server | undefined;
	#throttleNext = 0;
	#dropNext = 0;
	#outages: { method: string; path: RegExp; until: number }[] = [];
	#plan: FaultPlan | undefined;
	#watchers: ((request: ProxiedRequest) => void)[] = [];

	constructor(private readonly upstream: string) {}

	get endpoint(): string {
		const address = this.#server?.address() as AddressInfo;
		return `http://127.0.0.1:${address.port}`;
	}

	/** The next `count` requests get 503 SlowDown. */
	throttle(count: number): void {
		this.#throttleNext = count;
	}

	/** The next `count` requests have their connection destroyed mid-request. */
	dropConnections(count: number): void {
		this.#dropNext = count;
	}

	/**
	 * Requests of `method` whose path matches get 503 SlowDown for `forMs` milliseconds (for
	 * good when not given): an outage of part of the store, as B2 has them.
	 */
	outage(method: string, path: RegExp, forMs = Number.POSITIVE_INFINITY): void {
		this.#outages.push({ method, path, until: Date.now() + forMs });
	}

	/** Ends every outage and fault plan. */
	recover(): void {
		this.#outages = [];
		this.#plan = undefined;
	}

	/** Faults from now on as `plan` decides, request by request (until `recover`). */
	inject(plan: FaultPlan): void {
		this.#plan = plan;
	}

	/** Calls `watch` with every request as it arrives (before any fault): tests that act at the n-th PUT. */
	onRequest(watch: (request: ProxiedRequest) => void): () => void {
		this.#watchers.push(watch);
		return () => {
			this.#watchers = this.#watchers.filter((w) => w !== watch);
		};
	}

	async start(): Promise<this> {
		const target = new URL(this.upstream);
		this.#server = createServer((req, res) => {
			this.stats.requests++;
			this.stats.byMethod[req.method ?? "?"] = (this.stats.byMethod[req.method ?? "?"] ?? 0) + 1;
			const bad = Object.keys(req.headers).find((h) => REJECTED.test(h));
			if (bad) {
				this.stats.rejected.push({ header: bad, method: req.method ?? "", url: req.url ?? "" });
				return reply(req, res, 400, "InvalidArgument", `Unsupported header '${bad}' received for this API call.`);
			}
			if (req.method === "PUT" && req.headers["x-amz-object-lock-mode"] && !req.headers["content-md5"]) {
				this.stats.missingMd5++;
				return reply(req, res, 400, "InvalidRequest", "Missing required header for this request: Content-MD5");
			}
			const url = new URL(req.url ?? "/", "http://proxy");
			const path = url.pathname;
			const request = classify(this.stats.requests, req.method ?? "", url);
			this.stats.byClass[request.class]++;
			for (const watch of this.#watchers) watch(request);
			if (this.#outages.some((o) => o.method === req.method && o.path.test(path) && Date.now() < o.until)) {
				this.stats.faultsInjected++;
				return reply(req, res, 503, "SlowDown", "Please reduce your request rate.");
			}
			if (this.#throttleNext > 0) {
				this.#throttleNext--;
				this.stats.faultsInjected++;
				return reply(req, res, 503, "SlowDown", "Please reduce your request rate.");
			}
			if (this.#dropNext > 0) {
				this.#dropNext--;
				this.stats.faultsInjected++;
				req.resume();
				req.socket.destroy();
				return;
			}
			const fault = this.#plan?.decide(request);
			if (fault) {
				this.stats.faultsInjected++;
				this.stats.injected.push({ n: request.n, class: request.class, key: request.key, fault: describeFault(fault) });
			}
			if (fault?.kind === "status") {
				const [code, message] = STATUS_ANSWERS[fault.status];
				return reply(req, res, fault.status, code, message);
			}
			if (fault?.kind === "reset-request") return resetMidRequest(req);
			const forward = () => {
				const upstream = httpRequest(
					{ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
					(answer) => {
						if (fault?.kind === "reset-response") return answerHalf(answer, res);
						res.writeHead(answer.statusCode ?? 502, answer.headers);
						answer.pipe(res);
					},
				);
				upstream.on("error", () => res.destroy());
				req.pipe(upstream);
			};
			if (fault?.kind === "slow") setTimeout(forward, fault.ms);
			else forward();
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

const STATUS_ANSWERS: Record<500 | 503 | 429, [string, string]> = {
	503: ["SlowDown", "Please reduce your request rate."],
	500: ["InternalError", "We encountered an internal error. Please try again."],
	429: ["TooManyRequests", "Too many requests, slow down."],
};

/** The class of an S3 request (path-style: /bucket/key?query). */
function classify(n: number, method: string, url: URL): ProxiedRequest {
	const slash = url.pathname.indexOf("/", 1);
	const key = slash < 0 ? "" : decodeURIComponent(url.pathname.slice(slash + 1));
	const query = url.searchParams;
	let kind: RequestClass = "bucket";
	if (!key) {
		if (method === "GET" && !query.has("object-lock") && !query.has("versioning")) kind = "list";
		else if (method === "POST" && query.has("delete")) kind = "delete";
	} else if (method === "GET") kind = "get";
	else if (method === "HEAD") kind = "head";
	else if (method === "PUT") kind = query.has("retention") ? "retention" : "put";
	else if (method === "DELETE") kind = "delete";
	return { n, class: kind, method, key };
}

function describeFault(fault: Fault): string {
	return fault.kind === "status" ? String(fault.status) : fault.kind === "slow" ? `slow ${fault.ms} ms` : fault.kind;
}

/** Reads half the request body (all of a bodiless request), then destroys the connection. */
function resetMidRequest(req: IncomingMessage): void {
	const length = Number(req.headers["content-length"] ?? 0);
	if (!(length > 1)) {
		req.socket.destroy();
		return;
	}
	let read = 0;
	req.on("data", (chunk: Buffer) => {
		read += chunk.length;
		if (read >= length / 2) req.socket.destroy();
	});
}

/** The store's answer cut short: headers and half the body, then the connection destroyed; a bodiless answer is lost. */
function answerHalf(answer: IncomingMessage, res: ServerResponse): void {
	const chunks: Buffer[] = [];
	answer.on("data", (chunk: Buffer) => chunks.push(chunk));
	answer.on("end", () => {
		const body = Buffer.concat(chunks);
		if (body.length < 2) {
			res.socket?.destroy();
			return;
		}
		res.writeHead(answer.statusCode ?? 502, answer.headers);
		res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
	});
	answer.on("error", () => res.socket?.destroy());
}

function reply(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string): void {
	req.resume();
	res.writeHead(status, { "content-type": "application/xml" });
	res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}
