import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { AccumulatedCounter, AccumulatedHistogram } from "../../src/metrics/accumulators.js";

const buckets = [0.0005, 0.001, 0.01, 0.1, 1];
const values = [0.0001, 0.0005, 0.0007, 0.002, 0.05, 0.05, 0.7, 3, 42];

describe("accumulated metrics render exactly as prom-client's own", () => {
  it("histogram: cumulative buckets, +Inf, sum and count, per label set", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const accumulated = new AccumulatedHistogram<"event">({
      name: "h",
      help: "help",
      buckets,
      registry: ours,
    });
    const reference = new Histogram({
      name: "h",
      help: "help",
      labelNames: ["event"],
      buckets,
      registers: [theirs],
    });
    for (const [event, list] of [
      ["a", values],
      ["b", values.slice(2, 5)],
    ] as const) {
      const series = accumulated.seriesFor(event, { event });
      for (const value of list) {
        accumulated.record(series, value);
        reference.observe({ event }, value);
      }
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The JSON form too, but for prom-client's always-empty exemplar slots.
    const plain = async (registry: Registry) =>
      (await registry.getMetricsAsJSON()).map((metric) => ({
        ...metric,
        values: metric.values.map((entry) => {
          const { labels, value, metricName } = entry as typeof entry & { metricName?: string };
          return { labels, value, metricName };
        }),
      }));
    expect(await plain(ours)).toEqual(await plain(theirs));
  });

  it("histogram: a value on a bound counts in that bucket (le is inclusive), above all bounds only in +Inf", async () => {
    const registry = new Registry();
    const histogram = new AccumulatedHistogram<"event">({ name: "h", help: "h", buckets, registry });
    const series = histogram.seriesFor("x", { event: "x" });
    histogram.record(series, 0.001);
    histogram.record(series, 5);
    const text = await registry.metrics();
    expect(text).toContain('h_bucket{le="0.0005",event="x"} 0');
    expect(text).toContain('h_bucket{le="0.001",event="x"} 1');
    expect(text).toContain('h_bucket{le="1",event="x"} 1');
    expect(text).toContain('h_bucket{le="+Inf",event="x"} 2');
    expect(text).toContain('h_count{event="x"} 2');
  });

  it("histogram: resetMetrics() zeroes the series in place, so a kept series goes on counting", async () => {
    const registry = new Registry();
    const histogram = new AccumulatedHistogram<"event">({ name: "h", help: "h", buckets, registry });
    const series = histogram.seriesFor("x", { event: "x" });
    histogram.record(series, 0.5);
    registry.resetMetrics();
    expect(await registry.metrics()).toContain('h_count{event="x"} 0');
    histogram.record(series, 0.5);
    expect(await registry.metrics()).toContain('h_count{event="x"} 1');
  });

  it("counter: series bumped in place are what a scrape reports, repeatedly", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const accumulated = new AccumulatedCounter({
      name: "c",
      help: "help",
      labelNames: ["result"],
      registry: ours,
    });
    const reference = new Counter({ name: "c", help: "help", labelNames: ["result"], registers: [theirs] });
    const cached = accumulated.seriesFor("cached", { result: "cached" });
    const verified = accumulated.seriesFor("verified", { result: "verified" });
    cached.value += 3;
    verified.value += 1;
    reference.inc({ result: "cached" }, 3);
    reference.inc({ result: "verified" }, 1);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    cached.value += 2;
    reference.inc({ result: "cached" }, 2);
    // A second scrape must not double what the first one copied.
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it("counter: a label set with nothing counted yet is not reported (as prom-client, which has no such series)", async () => {
    const registry = new Registry();
    const counter = new AccumulatedCounter({ name: "c", help: "help", labelNames: ["result"], registry });
    counter.seriesFor("idle", { result: "idle" });
    expect(await registry.metrics()).not.toContain('result="idle"');
  });
});
