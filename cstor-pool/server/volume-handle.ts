// What the server keeps per open volume, shared by every connection to it: the store's Replica,
// and the request ordering.
import type { Replica } from '../store/types.ts';
import { IoOrdering } from './io-ordering.ts';

export class VolumeHandle {
  readonly ordering = new IoOrdering();

  constructor(readonly replica: Replica) {}
}
