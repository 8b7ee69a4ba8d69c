// Per-target IO counters for the mgmt API: operations, bytes and summed latency, by direction.
export interface IoStatsSnapshot {
  readonly reads: number;
  readonly writes: number;
  readonly readBytes: number;
  readonly writeBytes: number;
  /** Summed latency of completed reads/writes, microseconds (divide by the count for the mean). */
  readonly readLatencyUs: number;
  readonly writeLatencyUs: number;
}

export class IoStats {
  private reads = 0;
  private writes = 0;
  private readBytes = 0;
  private writeBytes = 0;
  private readLatencyUs = 0;
  private writeLatencyUs = 0;

  /** One completed IO; `startMs` is the performance.now() it started at (no BigInt per IO). */
  record(kind: 'read' | 'write', bytes: number, startMs: number): void {
    const us = Math.round((performance.now() - startMs) * 1000);
    if (kind === 'read') {
      this.reads++;
      this.readBytes += bytes;
      this.readLatencyUs += us;
    } else {
      this.writes++;
      this.writeBytes += bytes;
      this.writeLatencyUs += us;
    }
  }

  snapshot(): IoStatsSnapshot {
    return {
      reads: this.reads,
      writes: this.writes,
      readBytes: this.readBytes,
      writeBytes: this.writeBytes,
      readLatencyUs: this.readLatencyUs,
      writeLatencyUs: this.writeLatencyUs,
    };
  }
}
