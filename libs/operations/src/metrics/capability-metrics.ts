import {
  Counter,
  CounterConfiguration,
  Gauge,
  GaugeConfiguration,
  Histogram,
  HistogramConfiguration,
  Registry,
} from 'prom-client';

/**
 * The one way a capability declares Prometheus metrics: a provider extends this class and declares its
 * metrics with `counter`, `gauge` and `histogram`, on a registry of its own. Each app instance gets its
 * own provider instance and so its own metrics (tests build several apps in one process; nothing is
 * shared through prom-client's global registry). Operations finds every such provider among the app's
 * providers and serves their registries together on `/metrics`; it knows no capability by name.
 */
export abstract class CapabilityMetrics {
  readonly registry = new Registry();

  protected counter<Label extends string = string>(config: CounterConfiguration<Label>): Counter<Label> {
    return new Counter({ ...config, registers: [this.registry] });
  }

  protected gauge<Label extends string = string>(config: GaugeConfiguration<Label>): Gauge<Label> {
    return new Gauge({ ...config, registers: [this.registry] });
  }

  protected histogram<Label extends string = string>(config: HistogramConfiguration<Label>): Histogram<Label> {
    return new Histogram({ ...config, registers: [this.registry] });
  }

  /**
   * `read` at most once per scrape: prom-client calls every gauge's `collect` in one synchronous pass,
   * so gauges fed by one source share one round trip; the next scrape reads again.
   */
  protected oncePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
    let scrape: Promise<T> | undefined;
    return () => {
      if (!scrape) {
        scrape = read();
        queueMicrotask(() => (scrape = undefined));
      }
      return scrape;
    };
  }
}
