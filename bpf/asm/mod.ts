/**
 * The eBPF instruction set: builders, the assembler and the listing format.
 *
 * @module
 */
export * from "./opcode.ts";
export * from "./helpers.ts";
export * from "./instruction.ts";
export * from "./assemble.ts";
export * from "./format.ts";
