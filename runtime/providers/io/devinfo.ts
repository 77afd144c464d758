/**
 * DTrace's `devinfo_t` for Linux block devices, as `event.dev`. `dev_statname` ("loop0",
 * "vda1") is the kernel's own device name, read in the kernel so predicates and keys can use
 * it; a comparison with a constant compiles to a device-number comparison. `dev_instance` is
 * the minor number (Linux has no separate instance). `dev_name` (the driver, from
 * /proc/devices) and `dev_pathname` ("/dev/loop0") are named in JavaScript.
 *
 * @module
 */
import { alu64, imm, R0, R1, R7, stx } from "../../../bpf/asm/mod.ts";
import { blockDevice, blockDeviceByName, kernelDev } from "../../../system/block_devices.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, field } from "../../codegen/fields.ts";
import { readMemberBytes } from "../../codegen/struct_read.ts";
import type { Expr } from "../../lambda/ir.ts";
import { type IoSource, loadWord, readDevice } from "./source.ts";

/** DTrace's devinfo_t. */
export interface DevInfo {
  /** The device's major number. */
  dev_major: number;
  /** The device's minor number. */
  dev_minor: number;
  /** The minor number: Linux has no separate instance number. */
  dev_instance: number;
  /** The driver: "loop", "zram", "virtblk", "device-mapper". */
  dev_name: string;
  /** The device as iostat names it: "loop0", "vda1", "zram0". */
  dev_statname: string;
  /** "/dev/loop0". */
  dev_pathname: string;
}

const NAME_SIZE = 32;

/** The `dev` fields of an io site. */
export function devFields(src: IoSource): EventField[] {
  const dev = (shape: (b: ProgramBuilder) => void) => (b: ProgramBuilder, dst: number) => {
    loadWord(b, src, "dev", R0);
    shape(b);
    b.emit(stx("DW", R7, dst, R0));
  };
  const int = { type: "int", size: 8, signed: false } as const;
  const name = (b: ProgramBuilder, dst: number) =>
    readDevice(b, src, "name", (t, p) => readMemberBytes(b, R1, t, p, R7, dst, NAME_SIZE));
  const minor = dev((b) => b.emit(alu64("AND", R0, imm(0xfffff))));
  const byDev = (dev: unknown) => blockDevice(Number(dev));
  return [
    field(["dev", "dev_major"], int, dev((b) => b.emit(alu64("RSH", R0, imm(20))))),
    field(["dev", "dev_minor"], int, minor),
    field(["dev", "dev_instance"], int, minor),
    {
      ...field(["dev", "dev_name"], int, dev(() => {})),
      type: undefined,
      transform: (d) => byDev(d)?.driver ?? "<unknown>",
    },
    {
      ...field(["dev", "dev_statname"], { type: "string", size: NAME_SIZE }, name),
      compareAs: (value: string) => {
        const found = blockDeviceByName(value);
        return found && {
          path: ["buf", "b_edev"],
          value: BigInt(kernelDev(found.major, found.minor)),
        };
      },
    },
    {
      ...field(["dev", "dev_pathname"], { type: "string", size: NAME_SIZE }, name),
      type: undefined,
      transform: (s) => `/dev/${s}`,
    },
  ];
}

/**
 * The devices predicates (all of which must hold) pin an event to: each `buf.b_edev == N`
 * among their conjuncts, which is also what `dev_statname === "loop0"` compiles to.
 */
export function pinnedDevices(predicates: readonly Expr[]): number[] {
  const conjuncts = (e: Expr): Expr[] =>
    e.op === "and" ? [...conjuncts(e.left), ...conjuncts(e.right)] : [e];
  return predicates.flatMap(conjuncts).flatMap((e) => {
    if (e.op !== "compare" || e.operator !== "==") return [];
    const [f, c] = e.left.op === "field" ? [e.left, e.right] : [e.right, e.left];
    if (f.op !== "field" || c.op !== "const" || f.path.join(".") !== "buf.b_edev") return [];
    return [Number(c.value)];
  });
}
