import { ATPWebSocketProvider } from '@atp/ws-react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.js';
import './styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

// The URL comes from `location` (ws(s)://<host>/api/ws/updates); retries stay within 10 s.
createRoot(root).render(
  <StrictMode>
    <ATPWebSocketProvider options={{ maxReconnectInterval: 10_000 }}>
      <App />
    </ATPWebSocketProvider>
  </StrictMode>,
);
