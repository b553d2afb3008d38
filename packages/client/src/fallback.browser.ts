import { createFallback, Fallback } from './fallback.js';

/**
 * Entry of the fallback's browser script (`dist/fallback.global.js`), loaded
 * only by pages that need it, next to the main script, whose size it leaves
 * alone: defines the global `ATPWebSocketFallback` with `createFallback` and
 * `Fallback`.
 *
 * @example
 * <script src="/static/v2/js/websocket.js"></script>
 * <script src="/static/v2/js/websocket-fallback.js"></script>
 * <script>
 *   const fallback = ATPWebSocketFallback.createFallback();
 *   const ws = new ATPWebSocket({ WebSocket: fallback.WebSocket });
 * </script>
 */
(globalThis as { ATPWebSocketFallback?: unknown }).ATPWebSocketFallback = { createFallback, Fallback };
