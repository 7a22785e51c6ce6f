// A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms
// with labels. Enough for an operator's /metrics without pulling in prom-client.

type LabelValues = Record<string, string>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((name, i) => `${name}="${escapeLabel(values[i] ?? '')}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: 'counter' | 'gauge' | 'histogram';

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    for (const label of labelNames) {
      if (!LABEL.test(label) || label === 'le') throw new Error(`invalid label name ${label} on ${name}`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected key(labels: LabelValues): string[] {
    const values = this.labelNames.map((name) => labels[name]);
    for (const [name, value] of Object.entries(labels)) {
      if (!this.labelNames.includes(name)) throw new Error(`metric ${this.name} has no label ${name}`);
      if (typeof value !== 'string') throw new Error(`label ${name} of ${this.name} must be a string`);
    }
    if (values.some((v) => v === undefined)) {
      throw new Error(`metric ${this.name} needs labels ${this.labelNames.join(', ')}`);
    }
    return values as string[];
  }

  abstract render(): string[];
}

class ScalarMetric extends Metric {
  readonly type: 'counter' | 'gauge';
  protected readonly values = new Map<string, { labels: string[]; value: number }>();

  constructor(type: 'counter' | 'gauge', name: string, help: string, labelNames: readonly string[]) {
    super(name, help, labelNames);
    this.type = type;
  }

  protected change(labels: LabelValues, fn: (old: number) => number): void {
    const values = this.key(labels);
    const id = JSON.stringify(values);
    const entry = this.values.get(id);
    if (entry === undefined) this.values.set(id, { labels: values, value: fn(0) });
    else entry.value = fn(entry.value);
  }

  get(labels: LabelValues = {}): number {
    return this.values.get(JSON.stringify(this.key(labels)))?.value ?? 0;
  }

  render(): string[] {
    const lines: string[] = [];
    for (const { labels, value } of this.values.values()) {
      lines.push(`${this.name}${renderLabels(this.labelNames, labels)} ${formatValue(value)}`);
    }
    return lines;
  }
}

export class Counter extends ScalarMetric {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super('counter', name, help, labelNames);
  }
  inc(labels: LabelValues = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease`);
    this.change(labels, (old) => old + by);
  }
}

export class Gauge extends ScalarMetric {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super('gauge', name, help, labelNames);
  }
  set(labels: LabelValues, value: number): void {
    this.change(labels, () => value);
  }
  inc(labels: LabelValues = {}, by = 1): void {
    this.change(labels, (old) => old + by);
  }
  dec(labels: LabelValues = {}, by = 1): void {
    this.change(labels, (old) => old - by);
  }
  /** Drops one label set, e.g. when the object it describes is deleted. */
  remove(labels: LabelValues): void {
    this.values.delete(JSON.stringify(this.key(labels)));
  }
}

export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export class Histogram extends Metric {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  readonly #series = new Map<string, { labels: string[]; counts: number[]; sum: number; count: number }>();

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {
    super(name, help, labelNames);
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.length === 0 || new Set(sorted).size !== sorted.length) {
      throw new Error(`histogram ${name} needs distinct buckets`);
    }
    this.buckets = sorted;
  }

  observe(labels: LabelValues, value: number): void {
    const values = this.key(labels);
    const id = JSON.stringify(values);
    let series = this.#series.get(id);
    if (series === undefined) {
      series = { labels: values, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(id, series);
    }
    this.buckets.forEach((bound, i) => {
      if (value <= bound) series.counts[i] = (series.counts[i] ?? 0) + 1;
    });
    series.sum += value;
    series.count += 1;
  }

  /** Count and sum of one series, for tests. */
  snapshot(labels: LabelValues = {}): { count: number; sum: number } {
    const series = this.#series.get(JSON.stringify(this.key(labels)));
    return { count: series?.count ?? 0, sum: series?.sum ?? 0 };
  }

  render(): string[] {
    const lines: string[] = [];
    for (const { labels, counts, sum, count } of this.#series.values()) {
      this.buckets.forEach((bound, i) => {
        lines.push(
          `${this.name}_bucket${renderLabels(this.labelNames, labels, ['le', formatValue(bound)])} ${counts[i]}`,
        );
      });
      lines.push(`${this.name}_bucket${renderLabels(this.labelNames, labels, ['le', '+Inf'])} ${count}`);
      lines.push(`${this.name}_sum${renderLabels(this.labelNames, labels)} ${formatValue(sum)}`);
      lines.push(`${this.name}_count${renderLabels(this.labelNames, labels)} ${count}`);
    }
    return lines;
  }
}

export class Registry {
  readonly #metrics = new Map<string, Metric>();

  #add<M extends Metric>(metric: M): M {
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets?: readonly number[],
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  /** The text exposition format served on /metrics. */
  render(): string {
    const out: string[] = [];
    for (const metric of this.#metrics.values()) {
      out.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`);
      out.push(`# TYPE ${metric.name} ${metric.type}`);
      out.push(...metric.render());
    }
    return `${out.join('\n')}\n`;
  }
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
