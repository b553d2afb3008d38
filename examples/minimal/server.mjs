import { createServer } from 'node:http';
import express from 'express';
import { createATPWebSocketServer } from '@atp/ws-server';
import { createATPRouter } from '@atp/ws-server/express';

const app = express();
const server = createServer(app);
const hub = createATPWebSocketServer({ server }); // WebSocket endpoint: /api/ws/updates
app.use(createATPRouter(hub, { publishToken: process.env.ATP_WS_PUBLISH_TOKEN })); // POST /api/ws/publish
app.use(express.static(new URL('./dist', import.meta.url).pathname)); // index.html + app.js (pnpm build)

server.listen(Number(process.env.PORT ?? 8000), () => {
  console.log(`Listening on http://localhost:${server.address().port}`);
});
process.on('SIGTERM', () => hub.close().then(() => server.close()));
