import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { s3 } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { tempDir } from "./support/harness.js";

const SCRIPT = fileURLToPath(new URL("../scripts/s3-test-server.sh", import.meta.url));

/** A second test server beside the suite's own: other ports, another state folder. */
const SECOND = {
	HOLDFAST_S3_PORT: "7499",
	HOLDFAST_S3_MON_PORT: "3399",
	HOLDFAST_S3_MON_V1_PORT: "6799",
};
let state: string | undefined;

function script(command: string) {
	return spawnSync("bash", [SCRIPT, command], {
		encoding: "utf8",
		env: { ...process.env, ...SECOND, ...(state ? { HOLDFAST_S3_STATE: state } : {}) },
		timeout: 120_000,
	});
}

afterAll(() => {
	if (state) script("stop");
});

describe.skipIf(!s3)("the S3 test server", () => {
	it("runs a second time beside the first, on the ports it is given", async () => {
		state = await tempDir("holdfast-s3-second-");
		const env = script("env").stdout;
		expect(env).toContain("HOLDFAST_S3_ENDPOINT=http://127.0.0.1:7499");
		const started = script("start");
		expect(started.status, started.stderr).toBe(0);
		expect((await fetch("http://127.0.0.1:7499/")).status).toBe(200);
		// The suite's own server still answers.
		expect((await fetch(s3?.endpoint as string)).status).toBeLessThan(500);
		expect(script("stop").status).toBe(0);
		await expect(fetch("http://127.0.0.1:7499/", { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
	}, 180_000);
});
