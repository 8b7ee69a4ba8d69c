// prom-client helpers: every daemon owns one Registry, exposes it at /metrics, and names
// operation metrics like external-snapshotter (`<component>_operation_total_seconds`).
import { collectDefaultMetrics, Histogram, Gauge, Registry } from 'prom-client';
import type { Request, Response } from 'express';

export function createRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Express handler serving the registry in the Prometheus text format. */
export function metricsHandler(registry: Registry) {
  return async (_req: Request, res: Response): Promise<void> => {
    res.setHeader('Content-Type', registry.contentType);
    res.send(await registry.metrics());
  };
}

export interface OperationMetrics {
  /** Times `fn`, recording its outcome as operation_status success|failure. */
  observe<T>(operation: string, fn: () => Promise<T>): Promise<T>;
}

/** `<prefix>_operation_total_seconds{operation_name,operation_status}` and an in-flight gauge. */
export function operationMetrics(registry: Registry, prefix: string): OperationMetrics {
  const latency = new Histogram({
    name: `${prefix}_operation_total_seconds`,
    help: `Latency of ${prefix} operations, by name and outcome`,
    labelNames: ['operation_name', 'operation_status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const inflight = new Gauge({
    name: `${prefix}_operations_in_flight`,
    help: `${prefix} operations in flight, by name`,
    labelNames: ['operation_name'],
    registers: [registry],
  });
  return {
    async observe<T>(operation: string, fn: () => Promise<T>): Promise<T> {
      const end = latency.startTimer({ operation_name: operation });
      inflight.inc({ operation_name: operation });
      try {
        const result = await fn();
        end({ operation_status: 'success' });
        return result;
      } catch (err) {
        end({ operation_status: 'failure' });
        throw err;
      } finally {
        inflight.dec({ operation_name: operation });
      }
    },
  };
}
