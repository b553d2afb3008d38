import { createServer } from 'node:http';
import express from 'express';
import { createATPWebSocketServer } from '@atp/ws-server';
import { createATPRouter } from '@atp/ws-server/express';

const app = express();
const server = createServer(app);
const hub = createATPWebSocketServer({ server });
// Also serves the browser client at /static/v2/js/websocket.js.
app.use(createATPRouter(hub, { publishToken: process.env.ATP_WS_PUBLISH_TOKEN }));
app.get('/', (_request, response) => response.sendFile(new URL('./index.html', import.meta.url).pathname));

server.listen(Number(process.env.PORT ?? 8000), () => {
  console.log(`Listening on http://localhost:${server.address().port}`);
});
process.on('SIGTERM', () => hub.close().then(() => server.close()));
