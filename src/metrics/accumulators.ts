import { Counter, type Metric, type Registry } from "prom-client";

/**
 * Counters and histograms that the request path updates with plain arithmetic and prom-client reads
 * when `/metrics` is scraped.
 *
 * Why not prom-client's own `labels(...).inc()`: every call there hashes the label set again (sorts and
 * joins the label names), validates it and allocates a few objects, and a histogram observation does
 * that twice over. Four such calls per request were a measurable share of the gateway's per-request CPU
 * (bench/README.md). Here a label set is looked up once per distinct set and its numbers are bumped in
 * place; prom-client still owns the registry, names, help texts and the exposition format, and sees the
 * same totals at every scrape.
 */

/** A counter whose series are plain numbers, copied into a prom-client `Counter` on each scrape. */
export class AccumulatedCounter<L extends string> {
  private readonly series = new Map<string, { readonly labels: Record<L, string>; value: number }>();

  constructor(options: { name: string; help: string; labelNames: readonly L[]; registry: Registry }) {
    const series = this.series;
    new Counter<L>({
      name: options.name,
      help: options.help,
      labelNames: options.labelNames,
      registers: [options.registry],
      collect() {
        this.reset();
        for (const { labels, value } of series.values()) if (value > 0) this.inc(labels, value);
      },
    });
  }

  /**
   * The series of one label set: callers keep it and bump `value` in place, so counting costs no label
   * hashing. Series live as long as the counter (label sets are bounded).
   */
  seriesFor(key: string, labels: Record<L, string>): { value: number } {
    let found = this.series.get(key);
    if (found === undefined) {
      found = { labels, value: 0 };
      this.series.set(key, found);
    }
    return found;
  }
}

/** One histogram series: cumulative counts are computed at scrape time from per-bucket counts. */
export interface HistogramSeries {
  /** Observations per bucket, non-cumulative; the last slot counts those above the highest bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram whose series are bumped in place ({@link record}) and rendered by prom-client's registry.
 *
 * It is registered as a metric object of its own rather than as a prom-client `Histogram`, because
 * prom-client has no public way to add counts to a histogram other than one `observe()` per value. The
 * registry asks a metric for `getForPromString()` (or `get()`) on every scrape; this answers in exactly
 * the shape prom-client's `Histogram` does — cumulative `le` buckets, `+Inf`, `_sum`, `_count`, the
 * series labels as shared labels — so the text is the same. A test renders both side by side.
 */
export class AccumulatedHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly bounds: readonly number[];
  private readonly seriesByKey = new Map<string, { labels: Record<L, string>; data: HistogramSeries }>();

  constructor(options: { name: string; help: string; buckets: readonly number[]; registry: Registry }) {
    this.name = options.name;
    this.help = options.help;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    // The registry's own calls (scrape, JSON, reset) are all this class implements; see above.
    options.registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label set, to cache per label set (see {@link AccumulatedCounter.seriesFor}). */
  seriesFor(key: string, labels: Record<L, string>): HistogramSeries {
    let found = this.seriesByKey.get(key);
    if (found === undefined) {
      found = { labels, data: { counts: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0 } };
      this.seriesByKey.set(key, found);
    }
    return found.data;
  }

  /** Records one value in a series: a short scan over the (few) bucket bounds, two additions. */
  record(series: HistogramSeries, value: number): void {
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && value > bounds[index]!) index += 1;
    series.counts[index]! += 1;
    series.sum += value;
    series.count += 1;
  }

  /** What the registry renders on a scrape. */
  async getForPromString(): Promise<RenderedHistogram> {
    const values: RenderedHistogram["values"] = [];
    const bucketName = `${this.name}_bucket`;
    for (const { labels, data } of this.seriesByKey.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += data.counts[i]!;
        values.push({
          labels: { le: this.bounds[i]! },
          sharedLabels: labels,
          value: cumulative,
          metricName: bucketName,
        });
      }
      values.push({
        labels: { le: "+Inf" },
        sharedLabels: labels,
        value: data.count,
        metricName: bucketName,
      });
      values.push({ labels: {}, sharedLabels: labels, value: data.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: data.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The JSON form (`registry.getMetricsAsJSON()`): as prom-client's, series labels merged into each value. */
  async get() {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...rest }) => ({
        ...rest,
        labels: { ...labels, ...sharedLabels },
      })),
    };
  }

  /**
   * Zeroes every series in place (the registry's `resetMetrics()`): callers keep references to their
   * series, which must go on counting into what the next scrape renders.
   */
  reset(): void {
    for (const { data } of this.seriesByKey.values()) {
      data.counts.fill(0);
      data.sum = 0;
      data.count = 0;
    }
  }
}

interface RenderedHistogram {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: {
    labels: Record<string, string | number>;
    sharedLabels: Record<string, string>;
    value: number;
    metricName: string;
  }[];
}
