import type { ReactElement } from 'react';
import { formatCount, humanize } from '../format.js';

/** Props of {@link FilterChips}. */
export interface FilterChipsProps {
  /** What the chips filter, for screen readers ("event type", "log level"). */
  readonly label: string;
  readonly options: readonly string[];
  readonly counts: Readonly<Record<string, number>>;
  /** The values shown; empty means all. */
  readonly selected: readonly string[];
  readonly onChange: (selected: string[]) => void;
  /** CSS class prefix for each option's colour (`chip-tool_call`, `chip-error`, …). */
  readonly tone?: string;
}

/** Toggle chips with counts: "All" plus one per value; several may be on at once. */
export function FilterChips({
  label,
  options,
  counts,
  selected,
  onChange,
  tone = 'chip',
}: FilterChipsProps): ReactElement {
  const total = options.reduce((sum, option) => sum + (counts[option] ?? 0), 0);
  const toggle = (option: string) => {
    const next = selected.includes(option) ? selected.filter((s) => s !== option) : [...selected, option];
    onChange(next.length === options.length ? [] : next);
  };
  return (
    <fieldset className="chips">
      <legend className="visually-hidden">Filter by {label}</legend>
      <button
        type="button"
        className="chip"
        aria-pressed={selected.length === 0}
        data-filter="all"
        onClick={() => onChange([])}
      >
        All <span className="chip-count">{formatCount(total)}</span>
      </button>
      {options.map((option) => (
        <button
          key={option}
          type="button"
          className={`chip ${tone}-${option}`}
          aria-pressed={selected.includes(option)}
          data-filter={option}
          onClick={() => toggle(option)}
        >
          <span className="chip-dot" aria-hidden="true" />
          {humanize(option)} <span className="chip-count">{formatCount(counts[option] ?? 0)}</span>
        </button>
      ))}
    </fieldset>
  );
}
