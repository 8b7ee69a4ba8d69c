// The pool's data-path metrics (prom-client), on the daemon's one Registry:
//   cstor_pool_operation_total_seconds{operation_name,operation_status}  latency per protocol op
//   cstor_pool_operations_in_flight{operation_name}
//   cstor_pool_read_bytes_total, cstor_pool_write_bytes_total           data moved by the protocol
//   cstor_pool_connections                                              replica connections open
//   cstor_pool_protocol_errors_total{reason}                            frames refused
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface PoolMetrics {
  /** Starts timing one operation; call the result with its outcome. */
  start(operation: string): (ok: boolean) => void;
  readBytes(n: number): void;
  writeBytes(n: number): void;
  connections(delta: number): void;
  protocolError(reason: string): void;
}

export function createPoolMetrics(registry: Registry): PoolMetrics {
  const latency = new Histogram({
    name: 'cstor_pool_operation_total_seconds',
    help: 'Latency of replica protocol operations, by name and outcome',
    labelNames: ['operation_name', 'operation_status'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const inflight = new Gauge({
    name: 'cstor_pool_operations_in_flight',
    help: 'Replica protocol operations in flight, by name',
    labelNames: ['operation_name'],
    registers: [registry],
  });
  const readBytes = new Counter({ name: 'cstor_pool_read_bytes_total', help: 'Bytes read through the replica protocol', registers: [registry] });
  const writeBytes = new Counter({ name: 'cstor_pool_write_bytes_total', help: 'Bytes written through the replica protocol', registers: [registry] });
  const connections = new Gauge({ name: 'cstor_pool_connections', help: 'Replica protocol connections open', registers: [registry] });
  const protocolErrors = new Counter({
    name: 'cstor_pool_protocol_errors_total',
    help: 'Frames refused by the replica protocol server, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  return {
    start(operation) {
      const end = latency.startTimer({ operation_name: operation });
      inflight.inc({ operation_name: operation });
      return (ok) => {
        end({ operation_status: ok ? 'success' : 'failure' });
        inflight.dec({ operation_name: operation });
      };
    },
    readBytes: (n) => readBytes.inc(n),
    writeBytes: (n) => writeBytes.inc(n),
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
