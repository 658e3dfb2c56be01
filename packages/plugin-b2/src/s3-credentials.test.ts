import { describe, expect, it } from "vitest";
import { keySourceFor, missingKeyMessage } from "./s3-credentials.js";
import { B2_PROFILE } from "./s3-profiles.js";

describe("missingKeyMessage", () => {
	it("names the variables to set", () => {
		const source = keySourceFor({ keyIdEnv: "OFFICE_KEY_ID", secretEnv: "OFFICE_KEY" }, B2_PROFILE, "backup");
		expect(missingKeyMessage(source, "backup")).toBe(
			"no credentials: set OFFICE_KEY_ID and OFFICE_KEY (or name other variables with keyIdEnv/secretEnv)",
		);
	});

	it("never repeats a key pasted where a variable's name belongs", () => {
		const pasted = "K005abcdefghiJKLmno12345678";
		const plain = keySourceFor({ keyIdEnv: "OFFICE_KEY_ID", secretEnv: pasted }, B2_PROFILE, "backup");
		expect(missingKeyMessage(plain, "backup")).toMatch(/^no credentials: keyIdEnv or secretEnv: .*\(not shown\)/);
		expect(missingKeyMessage(plain, "backup")).not.toContain(pasted);
		const groom = keySourceFor({ credentials: { groom: { keyIdEnv: "GROOM_ID", secretEnv: pasted } } }, B2_PROFILE, "groom");
		expect(missingKeyMessage(groom, "groom")).toMatch(/^no groom key: destination\.credentials\.groom: /);
		expect(missingKeyMessage(groom, "groom")).not.toContain(pasted);
	});
});
