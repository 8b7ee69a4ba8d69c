// kube-lite's Prometheus metrics (GET /metrics, bearer token required like every path), named
// like the Kubernetes API server's: apiserver_request_total, apiserver_request_duration_seconds,
// apiserver_longrunning_requests (open watches), plus the store's write-ahead log counters.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createRegistry } from '../../lib/metrics.ts';
import type { Store } from '../store/store.ts';

export interface ApiMetrics {
  registry: Registry;
  request(verb: string, resource: string, code: number, seconds: number): void;
  watchOpened(resource: string): void;
  watchClosed(resource: string): void;
}

export function createApiMetrics(store: Store): ApiMetrics {
  const registry = createRegistry('kube-lite');
  const total = new Counter({ name: 'apiserver_request_total', help: 'Requests by verb, resource and HTTP code', labelNames: ['verb', 'resource', 'code'], registers: [registry] });
  const duration = new Histogram({
    name: 'apiserver_request_duration_seconds',
    help: 'Request latency by verb and resource (watches excluded)',
    labelNames: ['verb', 'resource'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const watches = new Gauge({ name: 'apiserver_longrunning_requests', help: 'Open watches by resource', labelNames: ['verb', 'resource'], registers: [registry] });
  new Gauge({ name: 'kube_lite_objects', help: 'Objects stored', registers: [registry], collect() { this.set(store.count()); } });
  new Gauge({ name: 'kube_lite_resource_version', help: 'The latest resourceVersion', registers: [registry], collect() { this.set(store.resourceVersion); } });
  new Gauge({ name: 'kube_lite_wal_records', help: 'Write-ahead log records written since start', registers: [registry], collect() { this.set(store.walStats.records); } });
  new Gauge({ name: 'kube_lite_wal_batches', help: 'Durable write-ahead log batches (one sync each) since start', registers: [registry], collect() { this.set(store.walStats.batches); } });
  return {
    registry,
    request(verb, resource, code, seconds) {
      total.inc({ verb, resource, code: String(code) });
      duration.observe({ verb, resource }, seconds);
    },
    watchOpened(resource) {
      watches.inc({ verb: 'WATCH', resource });
    },
    watchClosed(resource) {
      watches.dec({ verb: 'WATCH', resource });
    },
  };
}
