import { useCallback, useEffect, useState } from 'react';
import { LOG_LEVELS, type LogLevel } from './types.js';

/** What the page shows, kept in the URL so that a reload or a shared link shows the same. */
export interface ViewState {
  /** The selected suite execution (`?suite=`), or `undefined` for the newest running one. */
  readonly suite: number | undefined;
  /** Event types shown (`?events=`); empty shows every type. */
  readonly events: readonly string[];
  /** Log levels shown (`?levels=`); empty shows every level. */
  readonly levels: readonly LogLevel[];
}

const list = (value: string | null) => (value ? value.split(',').filter(Boolean) : []);

function readView(search: string): ViewState {
  const params = new URLSearchParams(search);
  const suite = Number(params.get('suite'));
  return {
    suite: Number.isSafeInteger(suite) && suite > 0 ? suite : undefined,
    events: list(params.get('events')),
    levels: list(params.get('levels')).filter((l): l is LogLevel => (LOG_LEVELS as string[]).includes(l)),
  };
}

function toSearch(view: ViewState): string {
  const params = new URLSearchParams();
  if (view.suite !== undefined) params.set('suite', String(view.suite));
  if (view.events.length > 0) params.set('events', view.events.join(','));
  if (view.levels.length > 0) params.set('levels', view.levels.join(','));
  const text = params.toString().replaceAll('%2C', ',');
  return text ? `?${text}` : '';
}

/**
 * The view state and a setter that writes it to the URL: choosing another
 * suite adds a history entry (Back returns to the previous one), a filter
 * change replaces the current entry.
 */
export function useViewState(): [ViewState, (patch: Partial<ViewState>) => void] {
  const [view, setView] = useState(() => readView(window.location.search));
  useEffect(() => {
    const onPop = () => setView(readView(window.location.search));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const update = useCallback((patch: Partial<ViewState>) => {
    const current = readView(window.location.search);
    const next = { ...current, ...patch };
    const url = `${window.location.pathname}${toSearch(next)}${window.location.hash}`;
    const newSuite =
      patch.suite !== undefined && current.suite !== undefined && patch.suite !== current.suite;
    if (newSuite) window.history.pushState(null, '', url);
    else window.history.replaceState(null, '', url);
    setView(next);
  }, []);
  return [view, update];
}
