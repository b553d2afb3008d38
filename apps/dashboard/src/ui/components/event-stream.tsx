import type { ReactElement } from 'react';
import { compactJson, formatMs, formatTime, humanize } from '../format.js';
import { type EventItem, KNOWN_EVENT_TYPES, type TestRun } from '../types.js';
import { FilterChips } from './filter-chips.js';
import { newestMatching } from './newest-matching.js';

/** Props of {@link EventStream}. */
export interface EventStreamProps {
  readonly events: readonly EventItem[];
  readonly counts: Readonly<Record<string, number>>;
  readonly tests: readonly TestRun[];
  /** Event types shown; empty shows all. */
  readonly types: readonly string[];
  readonly onTypesChange: (types: string[]) => void;
}

/** The run's ATP events, newest first, filterable by type, with each one's duration. */
export function EventStream({ events, counts, tests, types, onTypesChange }: EventStreamProps): ReactElement {
  const options = [...new Set([...KNOWN_EVENT_TYPES, ...Object.keys(counts)])];
  const names = new Map(tests.map((t) => [t.id, t.name ?? t.testId]));
  const { shown, caption } = newestMatching(
    events,
    (event) => types.length === 0 || types.includes(event.type),
  );
  return (
    <section className="panel stream" aria-labelledby="events-title">
      <div className="panel-head">
        <h3 id="events-title">Agent events</h3>
        <span className="muted" data-testid="events-shown">
          {caption}
        </span>
      </div>
      <FilterChips
        label="event type"
        options={options}
        counts={counts}
        selected={types}
        onChange={onTypesChange}
        tone="type"
      />
      <ol className="feed" data-testid="event-list">
        {shown.length === 0 && <li className="empty">No events yet.</li>}
        {shown.map((event) => (
          <li key={event.key} className="feed-row" data-testid="event-row" data-type={event.type}>
            <time className="feed-time" dateTime={event.timestamp}>
              {formatTime(event.timestamp)}
            </time>
            <span className={`tag type-${event.type}`}>{humanize(event.type)}</span>
            <span className="feed-main">
              <span className="feed-text">{describeEvent(event)}</span>
              {event.testExecutionId !== undefined && (
                <span className="feed-sub">
                  {names.get(event.testExecutionId) ?? `test ${event.testExecutionId}`}
                </span>
              )}
            </span>
            <span className="feed-duration">{formatMs(event.durationMs)}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

const str = (value: unknown) =>
  typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;

/** A one-line summary of an event's payload, by type. */
export function describeEvent(event: EventItem): string {
  const p = event.payload;
  switch (event.type) {
    case 'llm_request':
      return [
        str(p.model),
        p.prompt_tokens !== undefined && `${str(p.prompt_tokens)} prompt tokens`,
        p.messages !== undefined && `${str(p.messages)} messages`,
      ]
        .filter(Boolean)
        .join(' · ');
    case 'llm_response':
      return [
        str(p.model),
        p.completion_tokens !== undefined && `${str(p.completion_tokens)} tokens`,
        p.finish_reason !== undefined && `finish: ${str(p.finish_reason)}`,
      ]
        .filter(Boolean)
        .join(' · ');
    case 'reasoning':
      return str(p.text) ?? compactJson(p);
    case 'tool_call': {
      const args = p.arguments === undefined ? '' : compactJson(p.arguments, 80);
      const status = str(p.status);
      return `${str(p.tool) ?? 'tool'}(${args})${status ? ` → ${status}` : ''}`;
    }
    case 'error':
      return [str(p.tool), str(p.message)].filter(Boolean).join(': ') || compactJson(p);
    default:
      return compactJson(p);
  }
}
