import { HoldfastError } from "../host/errors.js";
import type { HookName, LifecycleHooks } from "./lifecycle-hooks.js";

type TapFn = (...args: unknown[]) => unknown;
/** The shape tapable hands to a `register` interceptor. */
interface Tap {
	name: string;
	type: string;
	fn: TapFn;
}

/**
 * Wraps every tap so that whatever it throws reaches the user as
 * `[plugin] hook: message`, with the original error as the cause.
 * `owner()` names the plugin being activated when the tap is registered.
 */
export function attributeTapFailures(hooks: LifecycleHooks, owner: () => string | undefined): void {
	for (const [hookName, hook] of Object.entries(hooks) as [HookName, LifecycleHooks[HookName]][]) {
		(hook as unknown as { intercept(i: { register(tap: Tap): Tap }): void }).intercept({
			register: (tap) => wrapTap(tap, hookName, owner() ?? tap.name),
		});
	}
}

export function tapError(pluginName: string, hookName: string, cause: unknown): HoldfastError {
	if (cause instanceof HoldfastError && cause.code === "PLUGIN_FAILED") return cause;
	const message = cause instanceof Error ? cause.message : String(cause);
	return new HoldfastError("PLUGIN_FAILED", `[${pluginName}] ${hookName}: ${message}`, { cause });
}

function wrapTap(tap: Tap, hookName: string, pluginName: string): Tap {
	const fn = tap.fn;
	const wrapped = tap;
	if (wrapped.type === "promise") {
		wrapped.fn = async (...args: unknown[]) => {
			try {
				return await fn(...args);
			} catch (error) {
				throw tapError(pluginName, hookName, error);
			}
		};
	} else if (wrapped.type === "async") {
		wrapped.fn = (...args: unknown[]) => {
			const callback = args.pop() as (error?: unknown, result?: unknown) => void;
			try {
				fn(...args, (error?: unknown, result?: unknown) =>
					error ? callback(tapError(pluginName, hookName, error)) : callback(undefined, result),
				);
			} catch (error) {
				callback(tapError(pluginName, hookName, error));
			}
		};
	} else {
		wrapped.fn = (...args: unknown[]) => {
			try {
				return fn(...args);
			} catch (error) {
				throw tapError(pluginName, hookName, error);
			}
		};
	}
	return wrapped;
}
