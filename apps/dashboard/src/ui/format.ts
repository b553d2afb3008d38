const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

/** `14:03:27` in local time, or an empty string for an invalid timestamp. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : timeFormat.format(date);
}

/** `850 ms`, `4.2 s`, `2 m 05 s`, `1 h 12 m`. */
export function formatSeconds(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${String(Math.round(seconds % 60)).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} m`;
}

/** A duration given in milliseconds. */
export function formatMs(ms: number | undefined): string {
  return ms === undefined ? '' : formatSeconds(ms / 1000);
}

/** `0.87` → `87%`. */
export function formatRate(rate: number | undefined): string {
  return rate === undefined || !Number.isFinite(rate) ? '—' : `${Math.round(rate * 100)}%`;
}

/** A score 0-1 with two decimals. */
export function formatScore(score: number | null | undefined): string {
  return score === undefined || score === null ? '—' : score.toFixed(2);
}

/** `1234` → `1,234`. */
export function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

/** `tool_call` → `tool call`. */
export function humanize(name: string): string {
  return name.replaceAll('_', ' ');
}

/** A compact one-line rendering of a JSON value, cut at `max` characters. */
export function compactJson(value: unknown, max = 120): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
