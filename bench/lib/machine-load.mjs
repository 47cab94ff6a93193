// The machine is shared: other people's builds and tests start at any time. Before each round the
// benchmarks wait (a bounded time) for the machine to be quiet, and record whether it was, so a reader can
// tell a noisy run from a slow target.
import { readFileSync } from "node:fs";

function cpuTimes() {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: idle and iowait are the idle time.
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { idle, total };
}

/**
 * Fraction (0–1) of all CPUs busy over `sampleMs`, from /proc/stat; NaN where /proc is unavailable.
 *
 * @param {number} sampleMs
 */
export async function cpuBusyFraction(sampleMs = 500) {
  try {
    const before = cpuTimes();
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
    const after = cpuTimes();
    const total = after.total - before.total;
    return total > 0 ? 1 - (after.idle - before.idle) / total : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Waits until the machine's CPUs are less than `threshold` busy (while none of the benchmark's load runs),
 * for at most `maxWaitMs`. Resolves with whether it got quiet and the last busy fraction seen.
 *
 * @param {{ maxWaitMs: number, threshold?: number }} options
 */
export async function waitForQuiet({ maxWaitMs, threshold = 0.2 }) {
  const deadline = Date.now() + maxWaitMs;
  let busy = await cpuBusyFraction(500);
  while (!(busy < threshold) && Date.now() < deadline && Number.isFinite(busy)) {
    busy = await cpuBusyFraction(500);
  }
  return { quiet: busy < threshold || !Number.isFinite(busy), busy };
}
