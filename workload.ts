/**
 * Workloads to trace: Linux native AIO driven from Deno through `libaio.so.1` (Debian's
 * `libaio1`), as the aio_latency recipe's built-in demo and the tests use it. An
 * {@link AioContext} holds its iocbs in memory the kernel reads; requests are submitted and
 * reaped with the same system calls (io_submit, io_getevents, io_pgetevents) an application
 * such as fio makes, so the `aio` probes see them as they would see it.
 *
 * @example Read a file through AIO
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { AioContext, alignedBuffer, Fd, PREAD } from "./workload.ts";
 * const path = Deno.makeTempFileSync();
 * Deno.writeFileSync(path, new Uint8Array(4096).fill(7));
 * {
 *   // Buffered: any filesystem takes it (`{ direct: true }` asks for O_DIRECT).
 *   using file = new Fd(path);
 *   using ctx = new AioContext(1);
 *   const buf = alignedBuffer(4096);
 *   ctx.submit([{ opcode: PREAD, fd: file.fd, buf: buf.address, nbytes: 4096, offset: 0, data: 1n }]);
 *   const [done] = ctx.reap(1, 1);
 *   equal(done.res, 4096);
 *   equal(buf.bytes[4095], 7);
 * }
 * Deno.removeSync(path);
 * ```
 *
 * @module
 */
export {
  AioContext,
  type AioResult,
  type AlignedBuffer,
  alignedBuffer,
  Fd,
  type FdOptions,
  Pipe,
  POLL,
  PREAD,
  PWRITE,
  type ReapOptions,
  type Request,
} from "./runtime/workload/libaio.ts";
