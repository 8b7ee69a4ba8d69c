// Entry point: not built yet (see the issue that adds this daemon).
import { CstorError } from '../lib/errors.ts';

export async function main(_argv: readonly string[], _env: NodeJS.ProcessEnv): Promise<void> {
  throw new CstorError('unavailable', 'this daemon is not built yet');
}
