import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP load balancer in front of hub processes: every new connection goes to
 * the current backend; `target` switches it, as a load balancer takes a
 * draining process out of rotation.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(public target: number) {
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
          inbound.end();
          outbound.end();
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

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
