/**
 * The CPUs of this machine that are online, from /sys/devices/system/cpu/online ("0-3,6").
 *
 * @module
 */

/** The online CPUs' numbers, ascending. */
export function onlineCpus(): number[] {
  const cpus: number[] = [];
  const text = Deno.readTextFileSync("/sys/devices/system/cpu/online").trim();
  for (const part of text.split(",")) {
    const [lo, hi] = part.split("-").map(Number);
    for (let c = lo; c <= (hi ?? lo); c++) cpus.push(c);
  }
  return cpus;
}
