import { ATPWebSocket } from './client.js';

/**
 * Entry of the IIFE browser build (`dist/browser.global.js`, served as
 * `/static/v2/js/websocket.js`): defines the global `ATPWebSocket`, with
 * `ATPWebSocket.GapReason`. What it leaves to the ESM/CJS builds is listed in the README (Builds).
 *
 * @example
 * <script src="/static/v2/js/websocket.js"></script>
 * <script>
 *   const ws = new ATPWebSocket();
 *   ws.on('test_progress', (data) => console.log(data.progress_percent));
 *   ws.subscribe('test:progress', { suite_execution_id: 123 });
 *   ws.connect();
 * </script>
 */
(globalThis as { ATPWebSocket?: typeof ATPWebSocket }).ATPWebSocket = ATPWebSocket;
