// Test helper: a tiny JSON client for the pool's mgmt API (fetch, no retries).
export interface MgmtResponse {
  status: number;
  body: unknown;
  text: string;
}

export async function mgmt(address: string, method: string, path: string, body?: unknown, raw?: string): Promise<MgmtResponse> {
  const res = await fetch(`http://${address}${path}`, {
    method,
    headers: body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {},
    ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, body: parsed, text };
}
