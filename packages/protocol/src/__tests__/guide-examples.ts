// The JSON examples of the user guide (ATP-WEBSOCKET-GUIDE.md), copied verbatim:
// "Subscribe Example" and every block of "Data Payloads". Kept as text so that
// they are exactly what a reader of the guide would send.

/** The guide's subscribe example. */
export const guideSubscribeExample = `{
  "type": "subscribe",
  "payload": {
    "topic": "test:progress",
    "filter": {
      "suite_execution_id": 123
    }
  }
}
`;

/** The guide's data payload examples, keyed by message type, in the guide's order. */
export const guideDataExamples = {
  // Test Progress
  test_progress: `{
  "type": "test_progress",
  "payload": {
    "suite_execution_id": 123,
    "test_execution_id": 456,
    "test_id": "test-001",
    "test_name": "Login Test",
    "status": "running",
    "progress_percent": 50.0,
    "current_run": 2,
    "total_runs": 5,
    "message": "Executing step 3 of 6"
  }
}
`,
  // Test Completed
  test_completed: `{
  "type": "test_completed",
  "payload": {
    "suite_execution_id": 123,
    "test_execution_id": 456,
    "test_id": "test-001",
    "test_name": "Login Test",
    "success": true,
    "score": 0.95,
    "duration_seconds": 12.5
  }
}
`,
  // Suite Progress
  suite_progress: `{
  "type": "suite_progress",
  "payload": {
    "suite_execution_id": 123,
    "suite_name": "Auth Tests",
    "agent_name": "gpt-4",
    "status": "running",
    "progress_percent": 40.0,
    "completed_tests": 4,
    "total_tests": 10,
    "passed_tests": 3,
    "failed_tests": 1
  }
}
`,
  // Suite Completed
  suite_completed: `{
  "type": "suite_completed",
  "payload": {
    "suite_execution_id": 123,
    "suite_name": "Auth Tests",
    "agent_name": "gpt-4",
    "success_rate": 0.9,
    "total_tests": 10,
    "passed_tests": 9,
    "failed_tests": 1,
    "duration_seconds": 125.5
  }
}
`,
  // Log Entry
  log_entry: `{
  "type": "log_entry",
  "payload": {
    "suite_execution_id": 123,
    "test_execution_id": 456,
    "level": "info",
    "message": "Starting test execution",
    "timestamp": "2024-01-15T10:30:00Z",
    "source": "runner"
  }
}
`,
  // ATP Event
  event: `{
  "type": "event",
  "payload": {
    "suite_execution_id": 123,
    "test_execution_id": 456,
    "sequence": 15,
    "event_type": "tool_call",
    "timestamp": "2024-01-15T10:30:05Z",
    "payload": {
      "tool": "search",
      "arguments": {"query": "test data"}
    },
    "duration_ms": 150.5
  }
}
`,
  // Delta Update
  delta_update: `{
  "type": "delta_update",
  "payload": {
    "resource_type": "test_execution",
    "resource_id": 456,
    "sequence": 42,
    "changes": {
      "status": "completed",
      "score": 0.95
    }
  }
}
`,
} as const;
