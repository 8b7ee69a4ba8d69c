import { expect } from 'chai';
import { Histogram, Registry, type Metric } from 'prom-client';
import { createPoolMetrics, FastHistogram } from './metrics.ts';

describe('cstor-pool/server/metrics', () => {
  it("renders the latency histogram exactly as prom-client's Histogram would", async () => {
    const buckets = [0.001, 0.1, 1];
    const reference = new Registry();
    reference.setDefaultLabels({ component: 'cstor-pool' });
    const h = new Histogram({ name: 'h_seconds', help: 'latency', labelNames: ['operation_name', 'operation_status'], buckets, registers: [reference] });
    const ours = new Registry();
    ours.setDefaultLabels({ component: 'cstor-pool' });
    const f = new FastHistogram('h_seconds', 'latency', buckets);
    ours.registerMetric(f as unknown as Metric);
    const observations = [
      ['write', 'success', 0.0005],
      ['write', 'success', 0.05],
      ['write', 'success', 0.1],
      ['read', 'failure', 3],
      ['write', 'success', 1],
    ] as const;
    for (const [op, status, v] of observations) {
      h.labels({ operation_name: op, operation_status: status }).observe(v);
      f.observe(f.seriesFor(op, status), v);
    }
    expect(await ours.metrics()).to.equal(await reference.metrics());
    const json = (await ours.getMetricsAsJSON())[0] as unknown as { values: { metricName: string; labels: Record<string, unknown>; value: number }[] };
    expect(json.values.find((v) => v.metricName === 'h_seconds_count' && v.labels.operation_name === 'write')?.value).to.equal(4);
  });

  it('counts operations in flight and by outcome', async () => {
    const registry = new Registry();
    const m = createPoolMetrics(registry);
    const a = m.start('write');
    const b = m.start('write');
    m.start('read')(false);
    a(true);
    const text = await registry.metrics();
    expect(text).to.include('cstor_pool_operations_in_flight{operation_name="write"} 1');
    expect(text).to.include('cstor_pool_operation_total_seconds_count{operation_name="write",operation_status="success"} 1');
    expect(text).to.include('cstor_pool_operation_total_seconds_count{operation_name="read",operation_status="failure"} 1');
    b(false);
    expect(await registry.metrics()).to.include('cstor_pool_operations_in_flight{operation_name="write"} 0');
  });
});
