import { createServer, type Server, type Socket } from "node:net";
import { classifyFault, composeDestination, isHoldfastError, SystemClock } from "@holdfast/core";
import { afterEach, describe, expect, it } from "vitest";
import { S3Destination } from "./s3-destination.js";
import { S3_PROFILE } from "./s3-profiles.js";

const CREDENTIALS = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" };
let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
	for (const socket of sockets.splice(0)) socket.destroy();
	await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
	server = undefined;
});

/** A server that accepts connections and answers with `respond` (or never, when it returns nothing). */
async function serve(respond: (socket: Socket) => void): Promise<string> {
	server = createServer((socket) => {
		sockets.push(socket);
		socket.on("data", () => respond(socket));
		socket.on("error", () => undefined);
	});
	await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
	const address = server.address() as { port: number };
	return `http://127.0.0.1:${address.port}`;
}

function store(endpoint: string) {
	return new S3Destination({ bucket: "stalled", endpoint, timeoutSeconds: 1 }, S3_PROFILE, CREDENTIALS);
}

/** The store as the engine composes it, with a short retry budget. */
function destination(endpoint: string) {
	return composeDestination(store(endpoint), { clock: new SystemClock(), retryBudgetMs: 1500 });
}

/** Answers every request with one S3 error document. */
function answerWith(status: string, code: string, message: string) {
	return (socket: Socket) => {
		const body = `<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
		socket.write(`HTTP/1.1 ${status}\r\ncontent-type: application/xml\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
	};
}

describe("S3 destination faults (a local stand-in server)", () => {
	it("says a missing bucket is missing, not that some object was not found", async () => {
		const endpoint = await serve(answerWith("404 Not Found", "NoSuchBucket", "The specified bucket does not exist"));
		const subject = store(endpoint);
		const error = await subject.get("keys/abc").catch((e: unknown) => e);
		expect(isHoldfastError(error, "DESTINATION"), String(error)).toBe(true);
		expect((error as Error).message).toBe(
			`s3:stalled: bucket stalled does not exist at ${endpoint}: check its name and region, or let "holdfast init" create it`,
		);
		await subject.close?.();
	});

	it("says a key refused on the bucket was refused, though a HEAD's answer has no body to name it", async () => {
		const endpoint = await serve((socket) => socket.write("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"));
		const subject = store(endpoint);
		const error = await subject.preflight({ mode: "compliance", create: false }).catch((e: unknown) => e);
		expect((error as Error).message).toBe(
			"s3:stalled: the store refused the key (on bucket stalled, HTTP 403): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that it may use this bucket",
		);
		await subject.close?.();
	});

	it("says a refused key was refused, naming the variables that hold it", async () => {
		const endpoint = await serve(answerWith("403 Forbidden", "SignatureDoesNotMatch", "signature mismatch"));
		const subject = store(endpoint);
		const error = await subject.get("keys/abc").catch((e: unknown) => e);
		expect((error as Error).message).toBe(
			"s3:stalled: the store refused the key (SignatureDoesNotMatch, HTTP 403): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		);
		expect(classifyFault(error)).not.toBe("transient");
		await subject.close?.();
	});

	it("gives up on a server that accepts connections but never answers, as unreachable", async () => {
		const endpoint = await serve(() => undefined);
		const subject = destination(endpoint);
		const error = await subject.get("snapshots/abc").catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
		expect((error as Error).message).toMatch(/^s3:stalled is unreachable: get snapshots\/abc kept failing for .*TimeoutError/);
		await subject.close?.();
	}, 30_000);

	it("tries once and marks a 503 answer transient: the store classifies, the core's layer retries", async () => {
		let answered = 0;
		const endpoint = await serve((socket) => {
			answered++;
			const body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
			socket.write(
				`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
			);
		});
		const subject = store(endpoint);
		const error = await subject.get("index/abc").catch((e: unknown) => e);
		expect(classifyFault(error)).toBe("transient");
		expect(answered).toBe(1);
		await subject.close?.();
	}, 30_000);

	it("marks a body cut off before its announced length transient, never returning it short", async () => {
		let gets = 0;
		const endpoint = await serve((socket) => {
			gets++;
			// Ten bytes announced, four sent, then the connection closes.
			socket.end("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 10\r\n\r\nabcd");
		});
		const subject = store(endpoint);
		const error = await subject.get("data/ab/abc").catch((e: unknown) => e);
		expect(error).toBeInstanceOf(Error);
		expect(classifyFault(error)).toBe("transient");
		expect(gets).toBe(1);
		await subject.close?.();
	}, 30_000);

	it("retries 503 answers until the budget is spent, then says unreachable (not missing, not corrupt)", async () => {
		let answered = 0;
		const endpoint = await serve((socket) => {
			answered++;
			const body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
			socket.write(
				`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
			);
		});
		const subject = destination(endpoint);
		const error = await subject.get("index/abc").catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
		expect((error as Error).message).toContain("HTTP 503");
		expect(answered).toBeGreaterThan(1);
		await subject.close?.();
	}, 30_000);
});
