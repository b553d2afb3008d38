// Publishes one message through a hub's REST endpoint; the hub needs ATP_WS_PUBLISH_TOKEN set.
const base = process.env.ATP_URL ?? 'http://localhost:8000';

const response = await fetch(`${base}/api/ws/publish`, {
  method: 'POST',
  headers: {
    authorization: `Bearer ${process.env.ATP_WS_PUBLISH_TOKEN}`,
    'content-type': 'application/json',
  },
  // One message, or an array of them (all or nothing).
  body: JSON.stringify({
    type: 'test_progress',
    payload: {
      suite_execution_id: 123,
      test_execution_id: 456,
      test_id: 'test-001',
      test_name: 'Login Test',
      status: 'running',
      progress_percent: 50,
    },
  }),
});
if (response.status !== 202) throw new Error(`publish failed: ${response.status} ${await response.text()}`);
console.log('Published:', await response.json());
