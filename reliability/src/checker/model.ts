import {
  canonicalSubscriptionKey,
  type DataMessage,
  type Filter,
  matchesSubscription,
} from '@atp/ws-protocol';
import { type Sub, supersedeKey } from './messages.js';

/** A logical clock shared by the executor and every client of a run: each event takes the next tick. */
export class Clock {
  #now = 0;
  tick(): number {
    this.#now += 1;
    return this.#now;
  }
  get now(): number {
    return this.#now;
  }
}

/** One published message of a run, in the order the executor published them (one at a time). */
export interface Published {
  /** Its index in the publish log, also its unique id (carried in the payload). */
  readonly k: number;
  readonly message: DataMessage;
  /** `ok`: the publish resolved. `uncertain`: it rejected (it may or may not be in the stream). */
  status: 'ok' | 'uncertain';
  /** Tick before the publish call. */
  readonly start: number;
  /** Tick once it resolved or rejected. */
  end: number;
}

/** What a client saw, in arrival order (ticks of the shared clock). */
export type ClientEvent =
  | { kind: 'connect'; at: number; hub: number }
  | { kind: 'disconnect'; at: number; code: number }
  /** The subscription `sub` (canonical key) is confirmed: its live window starts here. */
  | { kind: 'open'; at: number; sub: string }
  /** The client sent an unsubscribe of `sub`: what it matched becomes optional from its open on. */
  | { kind: 'close'; at: number; sub: string }
  /**
   * A `from` replay was answered for `sub`: `afterK` is the id of the message at the `from` position
   * (-1 for the start of the stream's current life), undefined for a crafted position (future, gone
   * epoch) that names no message.
   */
  | {
      kind: 'history';
      at: number;
      sub: string;
      afterK: number | undefined;
      complete: boolean;
      replayed: number;
    }
  /** A gap declared to the client: `resumed`/`subscribed` incomplete with a skipped number, a hole, a refused resume, `sequence_gap`. */
  | { kind: 'gap'; at: number; why: string }
  /**
   * A data message: `k` its id, `seq` the session's sequence (continuing across connections), `replayOf`
   * the subscription whose `from` replay carried it (undefined: live or resume replay).
   */
  | { kind: 'data'; at: number; k: number; seq: number; epoch: string; offset: number; replayOf?: string }
  /** A protocol violation the client saw itself (a wrong `next_sequence`, a position accepted from nowhere, …). */
  | { kind: 'violation'; at: number; what: string };

/** Everything a client of a run recorded. */
export interface ClientRecord {
  readonly name: string;
  /** Canonical key → subscription, of every subscription it ever held. */
  readonly subs: Map<string, Sub>;
  readonly events: ClientEvent[];
}

export type ViolationKind =
  | 'lost'
  | 'duplicate'
  | 'order'
  | 'sequence'
  | 'unexpected'
  | 'protocol'
  | 'memory'
  | 'liveness';

export interface Violation {
  readonly kind: ViolationKind;
  readonly client: string;
  /** Ids of the messages involved. */
  readonly ks: readonly number[];
  readonly what: string;
}

export function subKey(sub: Sub): string {
  return canonicalSubscriptionKey(sub.topic, (sub.filter ?? {}) as Filter);
}

/** The reference model of a run: the publish log, and where the stream's history was lost (ticks). */
export interface RunModel {
  readonly log: readonly Published[];
  /** Ticks at which the stream's history was lost with a new epoch (a memory hub restarted, Redis restarted empty). */
  readonly resets: readonly number[];
}

/**
 * Checks one client's record against the model. The rules (from docs/PROTOCOL.md):
 *
 * - data messages carry ids of published messages matching one of the client's subscriptions;
 * - the session's `sequence` only grows, by one, except right after a declared gap;
 * - no message twice, except a `from` replay overlapping what an earlier connection got (documented);
 * - live messages (resume replays included) in publish order; each `from` replay in publish order, after its position;
 * - every message a held subscription matches, published after it was confirmed (and, for a complete
 *   `from` replay, after its position), arrives, unless a gap declared later covers it: a gap covers a
 *   message published before the gap and after the last live message delivered before the gap.
 *   A progress message superseded by a newer one of the same key may be coalesced away.
 */
export function checkClient(model: RunModel, record: ClientRecord): Violation[] {
  const out: Violation[] = [];
  const byK = new Map(model.log.map((p) => [p.k, p]));
  const seen = new Map<number, { connection: number; replay: boolean }>();
  const violation = (kind: ViolationKind, ks: number[], what: string) =>
    out.push({ kind, client: record.name, ks, what });
  let connection = 0;
  let lastLive: { k: number; at: number } | undefined;
  const liveTrail: Array<{ k: number; at: number }> = [];
  const replayLast = new Map<string, number>();
  const historyOf = new Map<string, Extract<ClientEvent, { kind: 'history' }>>();
  let lastSeq = 0;
  let gapSinceLastData = true;
  const gaps: number[] = [];
  const opened = new Map<string, number>();
  const closed = new Set<string>();
  for (const event of record.events) {
    switch (event.kind) {
      case 'connect':
        connection += 1;
        replayLast.clear();
        break;
      case 'open':
        if (!opened.has(event.sub)) opened.set(event.sub, event.at);
        break;
      case 'close':
        closed.add(event.sub);
        break;
      case 'history':
        historyOf.set(event.sub, event);
        replayLast.set(event.sub, event.afterK ?? -1);
        if (!event.complete) gapSinceLastData = true;
        break;
      case 'gap':
        gaps.push(event.at);
        gapSinceLastData = true;
        break;
      case 'violation':
        violation('protocol', [], event.what);
        break;
      case 'data': {
        const published = byK.get(event.k);
        if (!published) {
          violation(
            'unexpected',
            [event.k],
            `data message with unknown id ${event.k} (offset ${event.offset})`,
          );
          break;
        }
        if (![...record.subs.values()].some((s) => matchesSubscription(published.message, s)))
          violation('unexpected', [event.k], `k=${event.k} matches none of the client's subscriptions`);
        if (event.seq <= lastSeq)
          violation('sequence', [event.k], `sequence ${event.seq} after ${lastSeq} (k=${event.k})`);
        else if (event.seq !== lastSeq + 1 && !gapSinceLastData)
          violation(
            'sequence',
            [event.k],
            `sequence ${event.seq} after ${lastSeq} with no gap declared (k=${event.k})`,
          );
        lastSeq = Math.max(lastSeq, event.seq);
        gapSinceLastData = false;
        const earlier = seen.get(event.k);
        const replay = event.replayOf !== undefined;
        if (earlier && !(replay && earlier.connection !== connection))
          violation(
            'duplicate',
            [event.k],
            `k=${event.k} delivered twice (connections ${earlier.connection} and ${connection}${replay ? ', in a from replay' : ''})`,
          );
        if (!earlier) seen.set(event.k, { connection, replay });
        if (event.replayOf !== undefined) {
          const previous = replayLast.get(event.replayOf) ?? -1;
          if (event.k <= previous)
            violation(
              'order',
              [previous, event.k],
              `from replay of ${event.replayOf}: k=${event.k} after k=${previous}`,
            );
          replayLast.set(event.replayOf, event.k);
        } else {
          if (lastLive && event.k <= lastLive.k)
            violation('order', [lastLive.k, event.k], `live k=${event.k} after k=${lastLive.k}`);
          if (!lastLive || event.k > lastLive.k) {
            lastLive = { k: event.k, at: event.at };
            liveTrail.push(lastLive);
          }
        }
        break;
      }
      case 'disconnect':
        break;
    }
  }

  // Completeness.
  const required = new Map<number, string>();
  for (const [key, sub] of record.subs) {
    const openAt = opened.get(key);
    if (openAt === undefined || closed.has(key)) continue;
    const history = historyOf.get(key);
    let historyAfter: number | undefined;
    if (history?.complete && history.afterK !== undefined) {
      historyAfter = history.afterK;
      if (history.afterK === -1) {
        // The start of the stream's current life: after the last reset before the subscribe.
        const reset = [...model.resets].filter((t) => t < history.at).pop();
        const firstOfLife = reset === undefined ? undefined : model.log.find((p) => p.start > reset);
        historyAfter = firstOfLife ? firstOfLife.k - 1 : reset === undefined ? -1 : Number.POSITIVE_INFINITY;
      }
    }
    for (const p of model.log) {
      if (p.status !== 'ok' || required.has(p.k) || !matchesSubscription(p.message, sub)) continue;
      const live = p.start > openAt;
      const fromHistory = historyAfter !== undefined && p.k > historyAfter && history && p.end < history.at;
      if (!live && !fromHistory) continue;
      if (superseded(model.log, p, sub)) continue;
      required.set(p.k, key);
    }
  }
  for (const [k, key] of required) {
    if (seen.has(k)) continue;
    const p = byK.get(k) as Published;
    const covered = gaps.some((at) => p.start < at && !liveTrail.some((l) => l.k > k && l.at < at));
    const historyGap = (() => {
      const h = historyOf.get(key);
      return h !== undefined && !h.complete && p.start < h.at;
    })();
    if (!covered && !historyGap) {
      const after = liveTrail.find((l) => l.k > k);
      violation(
        'lost',
        [k],
        `k=${k} (${p.message.type}, ${key}) never arrived and no gap covers it${after ? `; k=${after.k} arrived after it` : ''}`,
      );
    }
  }
  return out;
}

/** A progress message a newer one (same key, also matching `sub`) supersedes: it may be coalesced away. */
function superseded(log: readonly Published[], p: Published, sub: Sub): boolean {
  const key = supersedeKey(p.message);
  if (key === undefined) return false;
  return log.some(
    (q) =>
      q.k > p.k &&
      q.status === 'ok' &&
      supersedeKey(q.message) === key &&
      matchesSubscription(q.message, sub),
  );
}

/** Checks every client; violations of one kind for one client are kept to the first few. */
export function checkRun(model: RunModel, records: readonly ClientRecord[]): Violation[] {
  const out: Violation[] = [];
  for (const record of records) {
    const perKind = new Map<string, number>();
    for (const v of checkClient(model, record)) {
      const n = (perKind.get(v.kind) ?? 0) + 1;
      perKind.set(v.kind, n);
      if (n <= 3) out.push(v);
    }
  }
  return out;
}
