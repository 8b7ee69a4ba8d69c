// What an informer needs from the API: list, and watch from a resourceVersion.
// ResourceClient implements it over HTTP; unit tests implement it with a fake.
import type { KubeList, KubeObject, WatchEvent } from './types/meta.ts';

export interface SelectorOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface ListOptions extends SelectorOptions {
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WatchOptions extends SelectorOptions {
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** Asks the server to end the watch after this long (it then closes normally). */
  timeoutSeconds?: number;
}

export interface WatchHandle {
  /** Resolves when the stream ends normally or is aborted; rejects (CstorError) on a stream failure. */
  readonly done: Promise<void>;
  /** Ends the watch; `done` then resolves. */
  abort(): void;
}

export interface ListWatchSource<T extends KubeObject> {
  list(options: ListOptions): Promise<KubeList<T>>;
  /**
   * Starts a watch; resolves once the server accepted it (rejects with a CstorError otherwise,
   * e.g. code `gone` for a resourceVersion past the retained window). `onEvent` is called once
   * per event, in order.
   */
  watch(options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): Promise<WatchHandle>;
}
