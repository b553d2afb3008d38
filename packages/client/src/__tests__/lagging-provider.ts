import type { ATPWebSocketServer } from '@atp/ws-server';

/**
 * Resource kind `lagging`: the test_completed ids of suite 1, served by an async provider whose
 * store is `lag.n` messages behind the stream, with the position that state reflects (as the
 * server README asks of a provider whose state comes from elsewhere). Returns the truth.
 */
export function serveLagging(hub: ATPWebSocketServer, lag: { n: number }): number[] {
  const history: Array<{ offset: number; completed: number[] }> = [];
  const truth: number[] = [];
  hub.resources.follow((messages, position) => {
    let offset = position.offset - messages.length;
    for (const message of messages) {
      offset += 1;
      if (message.type === 'test_completed') truth.push(message.payload.test_execution_id);
      history.push({ offset, completed: [...truth] });
    }
  });
  hub.resources.register('lagging', async (_id, { position }) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const at = [...history].reverse().find((h) => h.offset <= position.offset - lag.n);
    return {
      data: { completed: at ? [...at.completed] : [], progress: {} },
      position: { epoch: position.epoch, offset: at?.offset ?? 0 },
    };
  });
  return truth;
}
