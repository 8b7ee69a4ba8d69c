// Work queue metrics, named like client-go's workqueue metrics and labelled by queue name.
// Several queues may share one registry: each metric is registered once and reused.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  retried(): void;
  /** Seconds a key waited in the queue before a worker took it. */
  queued(seconds: number): void;
  /** Seconds one reconcile of a key took. */
  worked(seconds: number): void;
}

export const noQueueMetrics: QueueMetrics = {
  depth: () => {},
  added: () => {},
  retried: () => {},
  queued: () => {},
  worked: () => {},
};

const durationBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function reuse<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}

/** Metrics for the queue `name` in `registry`: workqueue_{depth,adds_total,retries_total,queue_duration_seconds,work_duration_seconds}. */
export function promQueueMetrics(registry: Registry, name: string): QueueMetrics {
  const labelNames = ['name'] as const;
  const registers = [registry];
  const depth = reuse(registry, 'workqueue_depth', () => new Gauge({ name: 'workqueue_depth', help: 'Keys waiting in the work queue', labelNames, registers }));
  const adds = reuse(registry, 'workqueue_adds_total', () => new Counter({ name: 'workqueue_adds_total', help: 'Keys added to the work queue', labelNames, registers }));
  const retries = reuse(registry, 'workqueue_retries_total', () => new Counter({ name: 'workqueue_retries_total', help: 'Keys re-added after a failure', labelNames, registers }));
  const queueDuration = reuse(
    registry,
    'workqueue_queue_duration_seconds',
    () => new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'Time a key waited before a worker took it', labelNames, buckets: durationBuckets, registers }),
  );
  const workDuration = reuse(
    registry,
    'workqueue_work_duration_seconds',
    () => new Histogram({ name: 'workqueue_work_duration_seconds', help: 'Time one reconcile of a key took', labelNames, buckets: durationBuckets, registers }),
  );
  const labels = { name };
  return {
    depth: (n) => depth.set(labels, n),
    added: () => adds.inc(labels),
    retried: () => retries.inc(labels),
    queued: (s) => queueDuration.observe(labels, s),
    worked: (s) => workDuration.observe(labels, s),
  };
}
