/**
 * Which errors are the user's to fix (a probe name, a lambda, an option, a target) rather than
 * a failure of the machine: the CLI and recipes print them as one line and exit 2.
 *
 * @module
 */
import { ProbeNotFoundError } from "../system/tracefs.ts";
import { ArgumentError, NotAFunctionError, SizeError } from "./arguments.ts";
import { UnknownFieldError } from "./compiler/handler_reads.ts";
import { DurationError } from "./duration.ts";
import { LambdaError } from "./lambda/ir.ts";
import { TargetError } from "./process_tree.ts";

const USAGE_ERRORS = [
  LambdaError,
  UnknownFieldError,
  ProbeNotFoundError,
  TargetError,
  DurationError,
  SizeError,
  NotAFunctionError,
  ArgumentError,
];

/** True for the typed errors that mean the input was wrong (exit code 2). */
export function isUsageError(e: unknown): boolean {
  return USAGE_ERRORS.some((kind) => e instanceof kind);
}
