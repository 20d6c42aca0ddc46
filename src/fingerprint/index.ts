/**
 * Code fingerprints that follow the code. A step's fingerprint covers its function's source and,
 * transitively, the module-level functions, constants, classes and enums it uses, in its own file
 * and in the project files it imports (relatively, through aliases, or as linked packages); the
 * npm packages it imports count by name and installed version, Node built-ins by name. Whitespace,
 * comments and type syntax do not count. The code fingerprinted is the code this process loaded.
 *
 * @example
 * import { callSiteOf, fingerprintFunction } from './fingerprint';
 * const site = callSiteOf(new Error(), 1); // inside step(): the caller's position
 * const fp = fingerprintFunction(fn, site, hashKey);
 *
 * @packageDocumentation
 */
export { callSiteOf } from './callsite';
export { noteStepDefinedAt } from './observed';
export { fingerprintFunction, fingerprintDependency, fingerprintOutputCodec, withParts, diffFingerprints, isNativeCode } from './fingerprint';
export { openFingerprintDiskCache } from './disk-cache';
export type { FingerprintDiskCache, FingerprintDiskCacheOptions } from './disk-cache';
export type { CallSite, CodeFingerprint, FingerprintDiff, FingerprintPart, FingerprintPartKind, StepInputs } from './model';
