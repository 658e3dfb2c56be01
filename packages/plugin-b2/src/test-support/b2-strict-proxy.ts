import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

const REJECTED = /^(x-amz-checksum-.+|x-amz-sdk-checksum-algorithm)$/i;

export interface ProxyStats {
	requests: number;
	rejected: { header: string; method: string; url: string }[];
	missingMd5: number;
	faultsInjected: number;
	byMethod: Record<string, number>;
}

/**
 * An HTTP proxy in front of the S3 test server that answers as B2 does: HTTP 400
 * "Unsupported header '…' received for this API call." to checksum headers B2 rejects, and
 * 400 to a locked PUT without Content-MD5. It can also answer 503 SlowDown on demand, as a
 * busy B2 does, to exercise retries.
 */
export class B2StrictProxy {
	readonly stats: ProxyStats = { requests: 0, rejected: [], missingMd5: 0, faultsInjected: 0, byMethod: {} };
	#server: Server | undefined;
	#throttleNext = 0;
	#dropNext = 0;
	#outages: { method: string; path: RegExp; until: number }[] = [];

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

	/** Ends every outage. */
	recover(): void {
		this.#outages = [];
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
			const path = new URL(req.url ?? "/", "http://proxy").pathname;
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
			const upstream = httpRequest(
				{ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
				(answer) => {
					res.writeHead(answer.statusCode ?? 502, answer.headers);
					answer.pipe(res);
				},
			);
			upstream.on("error", () => res.destroy());
			req.pipe(upstream);
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

function reply(
	req: IncomingMessage,
	res: import("node:http").ServerResponse,
	status: number,
	code: string,
	message: string,
): void {
	req.resume();
	res.writeHead(status, { "content-type": "application/xml" });
	res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}
