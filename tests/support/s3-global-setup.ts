import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

export interface S3TestServer {
	endpoint: string;
	accessKeyId: string;
	secretAccessKey: string;
}

declare module "vitest" {
	export interface ProvidedContext {
		s3: S3TestServer | null;
	}
}

const SCRIPT = fileURLToPath(new URL("../../scripts/s3-test-server.sh", import.meta.url));

async function answers(endpoint: string): Promise<boolean> {
	try {
		const response = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
		return response.status < 500;
	} catch {
		return false;
	}
}

/**
 * Starts the real S3 server (Ceph RGW with Object Lock) unless one already answers. Under
 * CI a missing server fails the whole run: integration tests never skip there.
 */
export default async function setup(project: TestProject): Promise<() => void> {
	const env = Object.fromEntries(
		spawnSync("bash", [SCRIPT, "env"], { encoding: "utf8" })
			.stdout.trim()
			.split("\n")
			.map((line) => line.split("=", 2) as [string, string]),
	);
	const server: S3TestServer = {
		endpoint: process.env.HOLDFAST_S3_ENDPOINT ?? env.HOLDFAST_S3_ENDPOINT,
		accessKeyId: process.env.HOLDFAST_S3_ACCESS_KEY ?? env.HOLDFAST_S3_ACCESS_KEY,
		secretAccessKey: process.env.HOLDFAST_S3_SECRET_KEY ?? env.HOLDFAST_S3_SECRET_KEY,
	};
	let started = false;
	if (!(await answers(server.endpoint)) && process.env.HOLDFAST_S3 !== "off") {
		const run = spawnSync("bash", [SCRIPT, "start"], { encoding: "utf8", stdio: ["ignore", "inherit", "pipe"] });
		started = run.status === 0;
		if (!started) process.stderr.write(`S3 test server did not start:\n${run.stderr}\n`);
	}
	const up = await answers(server.endpoint);
	if (!up && process.env.CI) {
		throw new Error(`the S3 test server is not running at ${server.endpoint} (CI never skips integration tests)`);
	}
	if (!up) process.stderr.write(`\nS3 test server absent at ${server.endpoint}: integration tests are skipped outside CI\n\n`);
	project.provide("s3", up ? server : null);
	return () => {
		if (started) spawnSync("bash", [SCRIPT, "stop"], { stdio: "ignore" });
	};
}
