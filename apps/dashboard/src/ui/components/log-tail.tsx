import type { ReactElement } from 'react';
import { formatTime } from '../format.js';
import { LOG_LEVELS, type LogItem, type LogLevel } from '../types.js';
import { FilterChips } from './filter-chips.js';
import { newestMatching } from './newest-matching.js';

/** Props of {@link LogTail}. */
export interface LogTailProps {
  readonly logs: readonly LogItem[];
  readonly counts: Readonly<Record<LogLevel, number>>;
  /** Levels shown; empty shows all. */
  readonly levels: readonly LogLevel[];
  readonly onLevelsChange: (levels: LogLevel[]) => void;
}

/** The run's log lines, newest first, filterable by level. */
export function LogTail({ logs, counts, levels, onLevelsChange }: LogTailProps): ReactElement {
  const { shown, caption } = newestMatching(
    logs,
    (line) => levels.length === 0 || levels.includes(line.level),
  );
  return (
    <section className="panel stream" aria-labelledby="logs-title">
      <div className="panel-head">
        <h3 id="logs-title">Logs</h3>
        <span className="muted" data-testid="logs-shown">
          {caption}
        </span>
      </div>
      <FilterChips
        label="log level"
        options={LOG_LEVELS}
        counts={counts}
        selected={levels}
        onChange={(next) => onLevelsChange(next as LogLevel[])}
        tone="level"
      />
      <ol className="feed logs" data-testid="log-list">
        {shown.length === 0 && <li className="empty">No log lines yet.</li>}
        {shown.map((line) => (
          <li key={line.key} className="feed-row" data-testid="log-row" data-level={line.level}>
            <time className="feed-time" dateTime={line.timestamp}>
              {formatTime(line.timestamp)}
            </time>
            <span className={`tag level-${line.level}`}>{line.level}</span>
            <span className="feed-main">
              <span className="feed-text">{line.message}</span>
              {line.source && <span className="feed-sub">{line.source}</span>}
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}
