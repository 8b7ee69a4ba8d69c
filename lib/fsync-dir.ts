// fsync of a directory: makes a rename (or a create) in it durable. Without it, a crash after
// rename(2) may bring back the old name's content.
import fs from 'node:fs/promises';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
