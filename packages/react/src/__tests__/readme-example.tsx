import * as React from 'react';
import { useATPWebSocket } from '../index.js';

// The hook example of packages/react/README.md, verbatim but for the prop's type annotation.
export function TestProgress({ suiteExecutionId }: { suiteExecutionId: number }) {
  const { isConnected, subscribe, on } = useATPWebSocket();
  const [progress, setProgress] = React.useState(0);

  React.useEffect(() => {
    const cleanup = on('test_progress', (data) => {
      if (data.suite_execution_id === suiteExecutionId) {
        setProgress(data.progress_percent);
      }
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
