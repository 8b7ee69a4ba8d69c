// The pool's data-path metrics (prom-client), on the daemon's one Registry:
//   cstor_pool_operation_total_seconds{operation_name,operation_status}  latency per protocol op
//   cstor_pool_operations_in_flight{operation_name}
//   cstor_pool_read_bytes_total, cstor_pool_write_bytes_total           data moved by the protocol
//   cstor_pool_connections                                              replica connections open
//   cstor_pool_protocol_errors_total{reason}                            frames refused
// The per-IO path is kept cheap (it runs tens of thousands of times a second): histogram children
// are looked up once per (operation, outcome), and the in-flight gauge and byte counters are plain
// numbers copied into prom-client when /metrics is scraped (`collect`).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface PoolMetrics {
  /** Starts timing one operation; call the result with its outcome. */
  start(operation: string): (ok: boolean) => void;
  readBytes(n: number): void;
  writeBytes(n: number): void;
  connections(delta: number): void;
  protocolError(reason: string): void;
}

interface Observer {
  observe(value: number): void;
}

export function createPoolMetrics(registry: Registry): PoolMetrics {
  const latency = new Histogram({
    name: 'cstor_pool_operation_total_seconds',
    help: 'Latency of replica protocol operations, by name and outcome',
    labelNames: ['operation_name', 'operation_status'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const inflight = new Map<string, number>();
  new Gauge({
    name: 'cstor_pool_operations_in_flight',
    help: 'Replica protocol operations in flight, by name',
    labelNames: ['operation_name'],
    registers: [registry],
    collect() {
      for (const [op, n] of inflight) this.set({ operation_name: op }, n);
    },
  });
  const bytes = { read: 0, write: 0 };
  new Counter({
    name: 'cstor_pool_read_bytes_total',
    help: 'Bytes read through the replica protocol',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(bytes.read);
    },
  });
  new Counter({
    name: 'cstor_pool_write_bytes_total',
    help: 'Bytes written through the replica protocol',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(bytes.write);
    },
  });
  const connections = new Gauge({ name: 'cstor_pool_connections', help: 'Replica protocol connections open', registers: [registry] });
  const protocolErrors = new Counter({
    name: 'cstor_pool_protocol_errors_total',
    help: 'Frames refused by the replica protocol server, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const children = new Map<string, Observer>();
  const child = (op: string, status: string): Observer => {
    const key = `${op}\0${status}`;
    let c = children.get(key);
    if (!c) {
      c = latency.labels({ operation_name: op, operation_status: status });
      children.set(key, c);
    }
    return c;
  };
  return {
    start(operation) {
      const t0 = performance.now();
      inflight.set(operation, (inflight.get(operation) ?? 0) + 1);
      return (ok) => {
        child(operation, ok ? 'success' : 'failure').observe((performance.now() - t0) / 1000);
        inflight.set(operation, inflight.get(operation)! - 1);
      };
    },
    readBytes: (n) => void (bytes.read += n),
    writeBytes: (n) => void (bytes.write += n),
    connections: (d) => connections.inc(d),
    protocolError: (reason) => protocolErrors.inc({ reason }),
  };
}

/** Metrics that go nowhere: for tests that build a server without a registry. */
export const noMetrics: PoolMetrics = {
  start: () => () => {},
  readBytes: () => {},
  writeBytes: () => {},
  connections: () => {},
  protocolError: () => {},
};
