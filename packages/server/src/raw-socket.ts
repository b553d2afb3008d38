// The one place that reaches into `ws` internals: the TCP socket under a
// WebSocket, so that ready-made frames can be written to it in one call.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** The TCP socket under a `ws` WebSocket when frames may be written to it directly, else `undefined`. */
export function rawSocketOf(ws: WebSocket): Socket | undefined {
  // With an extension (permessage-deflate) ws transforms and may queue frames: only ws may write then.
  if (ws.extensions !== '') return undefined;
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  return socket && typeof socket.write === 'function' ? socket : undefined;
}

/** Whether `socket` is a TLS socket (it encrypts through its own buffering). */
export function isTls(socket: Socket): boolean {
  return (socket as Socket & { encrypted?: boolean }).encrypted === true;
}
