import { type KeyRole, looksLikeSecret, SECRET_AS_NAME } from "@holdfast/core";
import type { ProviderProfile } from "./s3-profiles.js";

/** Names of the environment variables holding one key; the config never holds the key itself. */
export interface EnvKey {
	readonly keyIdEnv: string;
	readonly secretEnv: string;
}

/** `destination.credentials`: a key per command class. Grooming deletes; nothing else must be able to. */
export type RoleCredentials = Partial<Record<KeyRole, EnvKey>>;

export interface KeyOptions {
	readonly keyIdEnv?: string;
	readonly secretEnv?: string;
	readonly credentials?: RoleCredentials;
}

/** Where a role's key is read from: the variables tried in order, and the config path that named them. */
export interface KeySource {
	readonly keyIdNames: readonly string[];
	readonly secretNames: readonly string[];
	/** `credentials.groom` when the role has its own key, else undefined. */
	readonly configured?: string;
}

/** The role's own key when `credentials` names one, else the single key every command used so far. */
export function keySourceFor(options: KeyOptions, profile: ProviderProfile, role: KeyRole): KeySource {
	const own = options.credentials?.[role];
	if (own) return { keyIdNames: [own.keyIdEnv], secretNames: [own.secretEnv], configured: `credentials.${role}` };
	return {
		keyIdNames: options.keyIdEnv ? [options.keyIdEnv] : profile.keyIdVariables,
		secretNames: options.secretEnv ? [options.secretEnv] : profile.secretVariables,
	};
}

export function sameKeySource(a: KeySource, b: KeySource): boolean {
	return a.keyIdNames.join("\n") === b.keyIdNames.join("\n") && a.secretNames.join("\n") === b.secretNames.join("\n");
}

export function readKey(source: KeySource, env: NodeJS.ProcessEnv): { accessKeyId: string; secretAccessKey: string } | undefined {
	const accessKeyId = source.keyIdNames.map((n) => env[n]).find(Boolean);
	const secretAccessKey = source.secretNames.map((n) => env[n]).find(Boolean);
	return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}

/** What to set, in one line: the variables, and where the config names them. */
export function missingKeyMessage(source: KeySource, role: KeyRole): string {
	if ([...source.keyIdNames, ...source.secretNames].some(looksLikeSecret)) {
		const where = source.configured ? `destination.${source.configured}` : "keyIdEnv or secretEnv";
		return `no ${source.configured ? `${role} key` : "credentials"}: ${where}: ${SECRET_AS_NAME}`;
	}
	const variables = `set ${source.keyIdNames.join(" or ")} and ${source.secretNames.join(" or ")}`;
	return source.configured
		? `no ${role} key: ${variables} (named by destination.${source.configured})`
		: `no credentials: ${variables} (or name other variables with keyIdEnv/secretEnv)`;
}
