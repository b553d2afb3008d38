import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP load balancer in front of hub processes: every new connection goes to
 * the current backend; `target` switches it, as a load balancer takes a
 * draining process out of rotation. `cut()` drops every connection through it
 * at once, as a network failure would.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;

  /**
   * @param abrupt when one side closes, destroy the other at once (a failing network) instead of ending it
   *   after its data (a load balancer passing a half-close on).
   */
  constructor(
    public target: number,
    abrupt = false,
  ) {
    this.#server = createServer((inbound) => {
      const outbound = connect(this.target, '127.0.0.1');
      for (const socket of [inbound, outbound]) {
        this.#sockets.add(socket);
        socket.on('error', () => {
          inbound.destroy();
          outbound.destroy();
        });
        // Half-closes travel through `pipe` (end → end); a closed side ends the other after its data.
        socket.on('close', () => {
          this.#sockets.delete(socket);
          if (abrupt) {
            inbound.destroy();
            outbound.destroy();
          } else {
            inbound.end();
            outbound.end();
          }
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/api/ws/updates`;
  }

  cut(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
