/**
 * tsprobe's version, as deno.json gives it (a test keeps the two the same): a module of its
 * own because a recipe loaded from a URL imports recipe.ts, and with it whatever that imports,
 * over HTTP, where a JSON module is one more thing a server must serve right.
 *
 * @module
 */

/** This tsprobe's version. */
export const VERSION = "0.1.0";
