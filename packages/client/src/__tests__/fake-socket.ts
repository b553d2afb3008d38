import type { WebSocketConstructor } from '../index.js';

/** A scripted stand-in for a WebSocket, for unit tests without a network. */
export class FakeSocket {
  readyState = 0;
  readonly sent: Array<{ type: string; id?: number; payload?: Record<string, unknown> }> = [];
  closedWith: { code?: number; reason?: string } | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** Opens the socket and sends `connected`. */
  accept(position = { epoch: 'e1', offset: 0 }, clientId = 'c1'): void {
    this.readyState = 1;
    this.onopen?.({});
    this.receive({
      type: 'connected',
      payload: { client_id: clientId, protocol: 1, ping_interval: 30, ping_timeout: 10, ...position },
    });
  }

  receive(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  /** A data message as the server delivers it. */
  data(
    sequence: number,
    offset: number,
    payload: object = { n: sequence },
    type = 'test_progress',
    epoch = 'e1',
  ): void {
    this.receive({ type, payload, sequence, epoch, offset });
  }

  /** The peer closed (or the network dropped) the connection. */
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** The upgrade failed, as `ws` reports it. */
  refuse(status: number): void {
    this.onerror?.({ message: `Unexpected server response: ${status}` });
    this.drop(1006, '');
  }

  /** Messages sent of one type. */
  sentOf(type: string): Array<{ type: string; id?: number; payload?: Record<string, unknown> }> {
    return this.sent.filter((m) => m.type === type);
  }
}

/** A constructor that records every socket it creates. */
export function fakeWebSocket(): {
  WebSocket: WebSocketConstructor;
  sockets: FakeSocket[];
  last: () => FakeSocket;
} {
  const sockets: FakeSocket[] = [];
  const WebSocket = class extends FakeSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  };
  return {
    WebSocket,
    sockets,
    last: () => {
      const socket = sockets.at(-1);
      if (!socket) throw new Error('no socket was created');
      return socket;
    },
  };
}
