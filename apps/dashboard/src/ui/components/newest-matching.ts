import { formatCount } from '../format.js';

/** Rows a stream panel renders at most; the rest are counted, not drawn. */
const VISIBLE_ROWS = 200;

/** The newest items (newest first) that `keep` accepts, at most {@link VISIBLE_ROWS}, and a caption counting all of them. */
export function newestMatching<T>(
  items: readonly T[],
  keep: (item: T) => boolean,
): { shown: T[]; caption: string } {
  const shown: T[] = [];
  let matching = 0;
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as T;
    if (!keep(item)) continue;
    matching += 1;
    if (shown.length < VISIBLE_ROWS) shown.push(item);
  }
  const caption =
    matching > shown.length
      ? `newest ${shown.length} of ${formatCount(matching)}`
      : `${formatCount(matching)} shown`;
  return { shown, caption };
}
