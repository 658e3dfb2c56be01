import { createHash } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";

const CHECKSUM_HEADER = /^x-amz-(checksum-|sdk-checksum-algorithm)/i;

type Handler = (args: { request: unknown }) => Promise<unknown>;
type FinalizeMiddleware = Parameters<S3Client["middlewareStack"]["addRelativeTo"]>[0];

/**
 * B2 answers HTTP 400 "Unsupported header" to `x-amz-checksum-*` and
 * `x-amz-sdk-checksum-algorithm`, which the SDK still sends for operations whose checksum is
 * required (DeleteObjects, PutObjectRetention) even with `WHEN_REQUIRED`. Before signing,
 * this removes them and sends the Content-MD5 that S3 accepts in their place.
 */
export function useContentMd5Only(client: S3Client): void {
	client.middlewareStack.addRelativeTo(
		((next: Handler) => async (args: { request: unknown }) => {
			const request = args.request as { headers?: Record<string, string>; body?: unknown };
			if (request.headers) {
				for (const name of Object.keys(request.headers)) if (CHECKSUM_HEADER.test(name)) delete request.headers[name];
				const hasMd5 = Object.keys(request.headers).some((n) => n.toLowerCase() === "content-md5");
				const body = request.body;
				if (!hasMd5 && (typeof body === "string" || body instanceof Uint8Array) && body.length > 0) {
					request.headers["content-md5"] = createHash("md5").update(body).digest("base64");
				}
			}
			return next(args);
		}) as unknown as FinalizeMiddleware,
		{ relation: "before", toMiddleware: "httpSigningMiddleware", name: "holdfastContentMd5Only", override: true },
	);
}
