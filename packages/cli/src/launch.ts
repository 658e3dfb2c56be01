// What bin/holdfast.js loads before anything else, bundled into one file with the key derivation
// it starts (scripts/bundle.mjs): the clock to scrypt's start is then one module read, not five
// modules found, read and linked one by one (about 8 ms of the 150 a short command may take).

export { deriveAtLaunch } from "./derive-at-launch.js";
export * from "./node-tuning.js";
