// HttpCaller over axios for the target and pool mgmt APIs: every status is an answer; only a
// missing answer throws (unavailable, or timeout past `timeoutMs`).
import axios from 'axios';
import { CstorError } from '../../lib/errors.ts';
import type { HttpCaller, HttpMethod, HttpResponse, Json } from './ports.ts';

export class AxiosHttpCaller implements HttpCaller {
  constructor(private readonly timeoutMs = 30_000) {}

  async request(method: HttpMethod, url: string, body?: Json): Promise<HttpResponse> {
    try {
      const res = await axios.request<string>({
        method,
        url,
        data: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
        timeout: this.timeoutMs,
        responseType: 'text',
        transformResponse: [(data: string) => data],
        validateStatus: () => true,
        proxy: false,
      });
      const text = typeof res.data === 'string' ? res.data : '';
      let parsed: Json = null;
      if (text.trim() !== '') {
        try {
          parsed = JSON.parse(text) as Json;
        } catch {
          parsed = text;
        }
      }
      return { status: res.status, body: parsed };
    } catch (err) {
      const code = axios.isAxiosError(err) && (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') ? 'timeout' : 'unavailable';
      throw new CstorError(code, `${method} ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}
