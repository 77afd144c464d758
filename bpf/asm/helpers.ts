/**
 * Kernel helper function ids (`enum bpf_func_id` in `include/uapi/linux/bpf.h`), the ones the
 * runtime calls. Numbers are ABI: the kernel never renumbers them.
 *
 * @module
 */
export const Helper = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  probe_read: 4,
  ktime_get_ns: 5,
  get_smp_processor_id: 8,
  get_current_pid_tgid: 14,
  get_current_uid_gid: 15,
  get_current_comm: 16,
  get_stackid: 27,
  get_current_task: 35,
  probe_read_str: 45,
  get_stack: 67,
  probe_read_user: 112,
  probe_read_kernel: 113,
  probe_read_user_str: 114,
  probe_read_kernel_str: 115,
  ringbuf_output: 130,
  ringbuf_reserve: 131,
  ringbuf_submit: 132,
  ringbuf_discard: 133,
  ringbuf_query: 134,
  get_current_task_btf: 158,
  task_pt_regs: 175,
  loop: 181,
} as const;
export type Helper = keyof typeof Helper;

/** Helper name by id, for the disassembler. */
export const HELPER_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(Helper).map(([name, id]) => [id, name]),
);
