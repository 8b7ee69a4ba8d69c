// Kubernetes timestamp formats.

/** metav1.Time: RFC 3339 to the second, e.g. 2026-01-02T03:04:05Z. */
export function kubeTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** metav1.MicroTime: RFC 3339 with microseconds, e.g. 2026-01-02T03:04:05.123000Z. */
export function kubeMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
