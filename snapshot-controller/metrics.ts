// The snapshot-controller's metrics, named like external-snapshotter's:
// snapshot_controller_operation_total_seconds{operation_name,operation_status} (backend calls,
// and CreateSnapshotAndReady: VolumeSnapshot created → Ready), in-flight gauges, and a leader gauge.
import { Gauge, type Histogram, type Registry } from 'prom-client';
import { operationMetrics, type OperationMetrics } from '../lib/metrics.ts';

export interface SnapshotMetrics extends OperationMetrics {
  /** Seconds from the VolumeSnapshot's creation to Ready (observed once, at the transition). */
  createdToReady(seconds: number): void;
  /** 1 while this process leads. */
  setLeader(leading: boolean): void;
}

export const noSnapshotMetrics: SnapshotMetrics = {
  observe: (_operation, fn) => fn(),
  createdToReady: () => {},
  setLeader: () => {},
};

export function snapshotMetrics(registry: Registry): SnapshotMetrics {
  const ops = operationMetrics(registry, 'snapshot_controller');
  const latency = registry.getSingleMetric('snapshot_controller_operation_total_seconds') as Histogram<'operation_name' | 'operation_status'>;
  const leader = new Gauge({ name: 'snapshot_controller_leader', help: '1 when this replica is the leader', registers: [registry] });
  return {
    observe: (operation, fn) => ops.observe(operation, fn),
    createdToReady: (seconds) => latency.observe({ operation_name: 'CreateSnapshotAndReady', operation_status: 'success' }, Math.max(0, seconds)),
    setLeader: (leading) => leader.set(leading ? 1 : 0),
  };
}
