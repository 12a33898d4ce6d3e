/**
 * workerd as the operating system sees it: its CPU time and resident memory, read from /proc.
 * Inside workerd `performance.now()` stands still while JavaScript runs, so CPU costs are taken
 * from outside, as the kernel counts them (user + system time of the whole process, which under
 * `npm start` and `wrangler dev` also runs miniflare's local R2 and cache).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * The workerd processes of a registry started with `--port=<port>` (their parent's command line
 * names the port). `worker` runs the Worker and miniflare's local R2 and cache. Under `wrangler
 * dev` there is also `proxy`, wrangler's proxy Worker, which listens on the port and forwards every
 * request and response to it; `npm start` (scripts/serve.ts) has none.
 */
export function findWorkerd(port: number): { worker: number; proxy?: number } {
  let worker: number | undefined;
  let proxy: number | undefined;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (!stat.includes("(workerd)")) continue;
      const ppid = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
      const parent = readFileSync(`/proc/${ppid}/cmdline`, "utf8").split("\0");
      if (!parent.includes(`--port=${port}`)) continue;
      const own = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      const wranglerDev = parent.includes("dev");
      if (wranglerDev && own.includes(`entry=127.0.0.1:${port}`)) proxy = Number(entry);
      else worker = Number(entry);
    } catch {
      // The process ended while it was being read.
    }
  }
  if (worker === undefined) throw new Error(`no workerd for the registry on --port=${port}`);
  return proxy === undefined ? { worker } : { worker, proxy };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 once pid and comm are cut off.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]);
}

/** Resident memory now, in MB. */
export function rssMb(pid: number): number {
  return (statusKb(pid, "VmRSS") * 1024) / 1e6;
}

/**
 * Peak resident memory of each process over `work`, in MB: the kernel's high-water mark, reset
 * first (clear_refs 5), so the figure is this work's and not an earlier phase's.
 */
export async function peakRssDuring<T>(
  pids: number[],
  work: () => Promise<T>,
): Promise<{ result: T; peakMb: number[] }> {
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, "5");
  const result = await work();
  return { result, peakMb: pids.map((pid) => (statusKb(pid, "VmHWM") * 1024) / 1e6) };
}

/** CPU seconds workerd spent over `work`, measured from outside. */
export async function cpuDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpu: number }> {
  const before = cpuSeconds(pid);
  const result = await work();
  return { result, cpu: cpuSeconds(pid) - before };
}
