// Reading an accepted socket into buffers of our own (both the pool's replica server and the
// target's iSCSI portal): Node 20's net.Server has no `onread` option, net.connect does.
import net from 'node:net';

/** Where an adopted socket reads: `buffer()` gives the next buffer, `callback(n)` gets n bytes in it. */
export interface ReadBuffers {
  buffer: () => Buffer;
  callback: (n: number) => boolean;
}

/**
 * Makes an accepted socket read into buffers the caller provides: its handle moves to a new Socket
 * built with `onread`, and the accepted one, which never read a byte (the server pauses on
 * connect), is released. Returns null, leaving `socket` as it was, where the handle is not
 * reachable (it relies on Node's internal `_handle`; callers keep a 'data' fallback, tested) or
 * the socket already reads.
 */
export function adoptWithReadBuffers(socket: net.Socket, onread: ReadBuffers): net.Socket | null {
  const holder = socket as unknown as { _handle?: object | null };
  const handle = holder._handle;
  if (handle === null || typeof handle !== 'object' || socket.destroyed || !socket.isPaused()) return null;
  holder._handle = null;
  socket.destroy();
  const adopted = new net.Socket({ handle, onread } as net.SocketConstructorOpts);
  adopted.resume();
  return adopted;
}
