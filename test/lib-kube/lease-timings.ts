// Short leader-election timings for the tests (the defaults are 15 s / 10 s / 2 s).
export const leaseTimings = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 } as const;
