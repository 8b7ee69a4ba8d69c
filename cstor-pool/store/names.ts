// Names that reach the pool's file system: volume names become file names, so they are checked
// here (DNS-1123) and every path is resolved and confirmed to stay inside its directory.
import path from 'node:path';
import { CstorError } from '../../lib/errors.ts';
import { dns1123SubdomainProblems, snapshotNameProblems } from '../../lib/names.ts';

/** `<volume>.json` must fit a 255-byte file name. */
export const maxVolumeNameLength = 250;

function check(kind: string, name: unknown, maxLength: number, rule = dns1123SubdomainProblems): string {
  if (typeof name !== 'string') throw new CstorError('invalid', `${kind} name must be a string`);
  const problems = rule(name);
  if (name.length > maxLength) problems.push(`must be no more than ${maxLength} characters`);
  if (problems.length > 0) {
    const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
    throw new CstorError('invalid', `invalid ${kind} name ${shown}: ${problems.join('; ')}`);
  }
  return name;
}

export function checkVolumeName(name: unknown): string {
  return check('volume', name, maxVolumeNameLength);
}

/** Snapshot names are ids like `<pv>_<snap>_<nanos>` (DESIGN.md §3); they never become paths. */
export function checkSnapshotName(name: unknown): string {
  return check('snapshot', name, 253, snapshotNameProblems);
}

export function checkPoolName(name: unknown): string {
  return check('pool', name, 253);
}

/** `dir/file`, refusing anything that would resolve outside `dir`. */
export function childPath(dir: string, file: string): string {
  const base = path.resolve(dir);
  const full = path.resolve(base, file);
  if (file.includes('\0') || path.dirname(full) !== base) {
    throw new CstorError('invalid', `path ${JSON.stringify(file)} leaves ${base}`);
  }
  return full;
}
