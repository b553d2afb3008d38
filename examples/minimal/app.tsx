import { useATPWebSocket } from '@atp/ws-react';
import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

function TestProgress({ suiteExecutionId }: { suiteExecutionId: number }) {
  const { isConnected, subscribe, on } = useATPWebSocket();
  const [progress, setProgress] = useState(0);

  useEffect(() => {
    const cleanup = on('test_progress', (data) => {
      if (data.suite_execution_id === suiteExecutionId) setProgress(data.progress_percent);
    });
    subscribe('test:progress', { suite_execution_id: suiteExecutionId });
    return cleanup;
  }, [suiteExecutionId, on, subscribe]);

  return (
    <div>
      <p>Connected: {isConnected ? 'Yes' : 'No'}</p>
      <p>Progress: {progress}%</p>
    </div>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(<TestProgress suiteExecutionId={123} />);
