// Kubernetes resource quantities ("5G", "1Gi", "500M", "1e3") as byte counts, for the one
// comparison the promoter makes: the requested size against the snapshot's. Kept here rather
// than imported from kube-lite (another component); lib/ has no quantity parser yet.

const multipliers: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const quantityRe = /^(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E))?$/;

/** Bytes of a non-negative storage quantity, or undefined when `value` is not one. */
export function quantityBytes(value: string): number | undefined {
  const m = quantityRe.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const bytes = m[2] !== undefined ? n * 10 ** Number(m[2]) : n * (multipliers[m[3] ?? ''] ?? 1);
  return Number.isFinite(bytes) ? bytes : undefined;
}
