import { describe, expect, it } from "vitest";
import { looksLikeSecret, readSecret } from "./secrets.js";

describe("readSecret", () => {
	it("names an unset variable, but never a key pasted where the variable's name belongs", async () => {
		await expect(readSecret({ env: "HOLDFAST_S3_SECRET" }, "/", {}, "password")).rejects.toThrow(
			"password: environment variable HOLDFAST_S3_SECRET is not set",
		);
		const pasted = "K005abcdefghiJKLmno12345678";
		const refused = await readSecret({ env: pasted }, "/", {}, "password").catch((error: Error) => error);
		expect(refused).toBeInstanceOf(Error);
		expect((refused as Error).message).toMatch(/^password: .*looks like a key itself \(not shown\)/);
		expect((refused as Error).message).not.toContain("K005");
		expect(await readSecret({ env: pasted }, "/", { [pasted]: "x" }, "password")).toBe("x");
	});
});

describe("looksLikeSecret", () => {
	it("tells keys from the names people give variables", () => {
		for (const key of ["K005abcdefghiJKLmno12345678", "AKIAIOSFODNN7EXAMPLE", "005a1b2c3d4e5f60000000001"]) {
			expect(looksLikeSecret(key), key).toBe(true);
		}
		for (const name of ["HOLDFAST_PASSWORD", "B2_APPLICATION_KEY", "AWS_SECRET_ACCESS_KEY", "KEY2", "S3SECRET"]) {
			expect(looksLikeSecret(name), name).toBe(false);
		}
	});
});
