import {
  type DataMessage,
  ErrorCode,
  type GetResourceMessage,
  ResourceIdSchema,
  ResourceKindSchema,
  type ResourceSnapshot,
  ResourceSnapshotSchema,
  type StreamPosition,
} from '@atp/ws-protocol';
import type { HistoryRead, StreamBatch, StreamEntry } from './broker.js';
import type { Principal } from './types.js';

/** What a snapshot provider returns for a resource it has. */
export interface ResourceState<T = unknown> {
  /** The resource's state (sent as JSON). */
  readonly data: T;
  /**
   * The stream position `data` reflects: every data message up to it is in
   * `data`, none after it is. Omitted: the position the hub handed to the
   * provider (`context.position`), which is right only when `data` was read
   * synchronously from state fed by {@link ResourceRegistry.follow}. A provider
   * that answers asynchronously must return it (the hub refuses the snapshot
   * otherwise): the stream moves on while it waits.
   */
  readonly position?: StreamPosition;
  /** The resource's own version (the `sequence` of the last `delta_update` in `data`), if it has one. */
  readonly version?: number;
}

/** What the hub tells a snapshot provider. */
export interface ResourceContext {
  /**
   * The position this process has delivered up to, read in the same turn of
   * the event loop as the provider is called: no data message is fanned out
   * between the two.
   */
  readonly position: StreamPosition;
  /** Who asks: the connection's principal, or `null` (anonymous, and every HTTP request). */
  readonly principal: Principal | null;
}

/**
 * Answers snapshots of one resource kind. Returns `undefined` for an id it
 * does not have (`resource_not_found`); a throw or a rejection is reported as
 * `resource_unavailable` and logged. So is an answer the hub cannot send: one
 * that is not an object with `data`, whose `data` is not JSON (a `BigInt`, a
 * cycle, a function), whose `version` or `position` is not a valid one, or
 * whose `position` is one the stream has not reached (an offset past the
 * broker's newest, or another epoch than the stream's).
 */
export type ResourceProvider<T = unknown> = (
  id: string,
  context: ResourceContext,
) => ResourceState<T> | undefined | Promise<ResourceState<T> | undefined>;

/** One resource kind: its provider and, optionally, who may read it. */
export interface ResourceDefinition<T = unknown> {
  readonly snapshot: ResourceProvider<T>;
  /** Whether `principal` may read resource `id` (default: everyone). A refusal answers `forbidden`. */
  readonly authorize?: (principal: Principal | null, id: string) => boolean | Promise<boolean>;
  /**
   * How long `authorize` and an asynchronous `snapshot` may take, ms; past it the request
   * answers `resource_unavailable` (a late answer is dropped). @default 10000
   */
  readonly timeoutMs?: number;
}

/** How long a provider may take by default: see {@link ResourceDefinition.timeoutMs}. */
export const RESOURCE_TIMEOUT_MS = 10_000;

/** `value`, or a rejection once `ms` have passed (the timer never keeps the process alive). */
async function within<T>(value: T | PromiseLike<T>, ms: number, what: string): Promise<T> {
  if (!isPromise(value)) return value;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref?.();
  });
  try {
    return await Promise.race([value, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A refused snapshot request: the error code and a message meant for a developer. */
export class ResourceError extends Error {
  override readonly name = 'ResourceError';

  constructor(
    readonly code:
      | typeof ErrorCode.InvalidMessage
      | typeof ErrorCode.UnknownResource
      | typeof ErrorCode.ResourceNotFound
      | typeof ErrorCode.ResourceUnavailable
      | typeof ErrorCode.Forbidden,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The HTTP status of each {@link ResourceError} code. */
export const resourceErrorStatus: Record<ResourceError['code'], number> = {
  [ErrorCode.InvalidMessage]: 400,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.UnknownResource]: 404,
  [ErrorCode.ResourceNotFound]: 404,
  [ErrorCode.ResourceUnavailable]: 503,
};

/**
 * A checked snapshot and its payload serialized as JSON: what the hub sends.
 * @internal
 */
export interface ResourceAnswer {
  readonly snapshot: ResourceSnapshot;
  /** `snapshot` as JSON (the `resource` frame's payload, the HTTP body). */
  readonly json: string;
}

/** A listener of the stream as this process delivers it: see {@link ResourceRegistry.follow}. */
export type StreamFollower = (messages: readonly DataMessage[], position: StreamPosition) => void;

/** Options of {@link ResourceRegistry.follow}. */
export interface FollowOptions {
  /**
   * `'start'`: first the history the broker keeps, from its oldest message up
   * to what this process has delivered, then every live batch. A process that
   * starts while others have been publishing (several processes on one Redis)
   * thereby holds the same state as they do at the same position. Without it,
   * only what this process delivers from now on.
   */
  readonly from?: 'start';
}

/** One follower; `held` keeps the live batches that arrive while its history is read. */
interface Follower {
  readonly listener: StreamFollower;
  held: StreamBatch[] | undefined;
}

/** Reads one page of history (`broker.read`). */
type HistoryReader = (from: 'start' | StreamPosition) => Promise<HistoryRead>;

function isPromise<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}

/**
 * Live state resources of a hub (`hub.resources`): the application registers
 * a snapshot provider per kind; clients fetch snapshots over the WebSocket
 * (`get_resource`) or HTTP (`GET /api/ws/resources/:kind/:id`) and apply the
 * data messages after the snapshot's position.
 *
 * **Consistency.** A snapshot must hold every data message up to its position
 * and none after it. The simplest way is to keep the application's state from
 * the stream itself with {@link follow}: the hub calls followers with each
 * batch before fanning it out, and calls a provider in the same turn as it
 * reads its position, so a provider that reads that state synchronously is
 * exact. A provider with state from elsewhere returns the position itself.
 *
 * @example
 * const store = new ExecutionStore();
 * hub.resources.follow((messages) => store.apply(messages));
 * hub.resources.register('suite_execution', {
 *   snapshot: (id) => {
 *     const data = store.get(Number(id));
 *     return data ? { data } : undefined;
 *   },
 * });
 */
/** `definition` as a {@link ResourceDefinition}; a TypeError naming what is wrong with it. */
function checkedDefinition<T>(kind: string, definition: ResourceDefinition<T> | ResourceProvider<T>) {
  if (typeof definition === 'function') return { snapshot: definition };
  const fail = (what: string) => {
    throw new TypeError(
      `the provider of '${kind}' must be a function or { snapshot, authorize?, timeoutMs? }: ${what}`,
    );
  };
  if (typeof definition !== 'object' || definition === null) fail(`got ${typeof definition}`);
  if (typeof definition.snapshot !== 'function') fail('snapshot is not a function');
  if (definition.authorize !== undefined && typeof definition.authorize !== 'function')
    fail('authorize is not a function');
  const { timeoutMs } = definition;
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)
  )
    fail(`timeoutMs must be a number of ms from above 0 to 2147483647; got ${String(timeoutMs)}`);
  return definition;
}

export class ResourceRegistry {
  readonly #kinds = new Map<string, ResourceDefinition>();
  readonly #followers = new Set<Follower>();

  /**
   * @param position The position this process has delivered up to.
   * @param onError Called with a provider's failure (a throw, a rejection, a time-out, an answer that cannot be sent).
   * @param head The stream's current epoch and newest offset (the broker's `position()`): a provider's position
   *   past it, or of another epoch, is refused. Without it, the delivered position is the bound.
   * @param history Reads history for `follow(…, { from: 'start' })`, once `started` resolves (the delivered
   *   position is known). Without it, that option is refused.
   */
  constructor(
    readonly position: () => StreamPosition,
    readonly onError: (error: unknown, kind: string, id: string) => void = () => {},
    readonly head?: () => Promise<StreamPosition>,
    readonly history?: { read: HistoryReader; started: Promise<void> },
  ) {}

  /** Registers the provider of `kind` (a name: letters, digits, `_ . -`); replaces an earlier one. */
  register<T>(kind: string, definition: ResourceDefinition<T> | ResourceProvider<T>): void {
    if (!ResourceKindSchema.safeParse(kind).success) {
      throw new TypeError(`a resource kind is 1-64 of letters, digits, '_', '.', '-'; got '${kind}'`);
    }
    this.#kinds.set(kind, checkedDefinition(kind, definition));
  }

  /** Removes the provider of `kind`; returns whether there was one. */
  unregister(kind: string): boolean {
    return this.#kinds.delete(kind);
  }

  /** The registered kinds. */
  kinds(): string[] {
    return [...this.#kinds.keys()];
  }

  /**
   * Calls `listener` with every batch of data messages this process delivers,
   * in stream order, before its clients get them, with the position after
   * the batch. With `{ from: 'start' }` it first gets the history the broker
   * keeps, oldest first, a page at a time, up to what this process has
   * delivered; live batches that arrive meanwhile follow it, each message
   * once. Returns a function that stops it. A listener that throws is logged
   * and does not stop delivery.
   */
  follow(listener: StreamFollower, options: FollowOptions = {}): () => void {
    if (typeof listener !== 'function')
      throw new TypeError(`a follower must be a function; got ${typeof listener}`);
    if (
      typeof options !== 'object' ||
      options === null ||
      (options.from !== undefined && options.from !== 'start')
    )
      throw new TypeError(`follow's options are { from?: 'start' }; got ${JSON.stringify(options)}`);
    if (options.from === 'start' && !this.history)
      throw new TypeError("follow(…, { from: 'start' }) needs a hub: this registry has no history to read");
    const follower: Follower = { listener, held: options.from === 'start' ? [] : undefined };
    this.#followers.add(follower);
    if (follower.held) void this.#catchUp(follower);
    return () => {
      this.#followers.delete(follower);
    };
  }

  /** @internal Called by the hub with each batch, before fanning it out. */
  feed(batch: StreamBatch): void {
    if (this.#followers.size === 0 || batch.entries.length === 0) return;
    if (batch.hole)
      this.onError(
        new Error('followers missed messages: the history was trimmed before this process read them'),
        '(follower)',
        '',
      );
    for (const follower of [...this.#followers]) {
      if (follower.held) follower.held.push(batch);
      else this.#call(follower, batch.epoch, batch.entries);
    }
  }

  /** Whether a follower from 'start' is still reading history. */
  #catchingUp(): boolean {
    for (const follower of this.#followers) if (follower.held) return true;
    return false;
  }

  #call(follower: Follower, epoch: string, entries: readonly StreamEntry[]): void {
    const last = entries[entries.length - 1];
    if (!last || !this.#followers.has(follower)) return;
    try {
      follower.listener(
        entries.map((entry) => entry.message),
        { epoch, offset: last.offset },
      );
    } catch (error) {
      this.onError(error, '(follower)', '');
    }
  }

  /**
   * Gives `follower` the kept history up to the delivered position, then the live batches held
   * meanwhile (those entries it got from history skipped), then lets live batches through.
   */
  async #catchUp(follower: Follower): Promise<void> {
    const history = this.history as NonNullable<typeof this.history>;
    let through: StreamPosition | undefined;
    await history.started;
    const target = this.position();
    let from: 'start' | StreamPosition = 'start';
    for (let failures = 0; this.#followers.has(follower); ) {
      let read: HistoryRead;
      try {
        read = await history.read(from);
      } catch (error) {
        // The broker is unreachable for a moment: read the same page again, whatever it takes.
        if (failures++ === 0) this.onError(error, '(follower history)', '');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 50 * 2 ** Math.min(failures, 7))));
        continue;
      }
      failures = 0;
      if (read.epoch !== target.epoch) {
        // The stream started over meanwhile (its history was lost or went back): the rest of the
        // old epoch cannot be read; the live batches of the new one follow.
        this.onError(
          new Error(`the stream left epoch '${target.epoch}' while its history was read for a follower`),
          '(follower history)',
          '',
        );
        break;
      }
      if (!read.complete)
        this.onError(
          new Error(
            `a follower from 'start' missed messages: ${read.reason ?? 'history'} while it read the history`,
          ),
          '(follower history)',
          '',
        );
      const entries = read.entries.filter((entry) => entry.offset <= target.offset);
      this.#call(follower, read.epoch, entries);
      const last = entries[entries.length - 1];
      if (!last) break;
      through = { epoch: read.epoch, offset: last.offset };
      if (last.offset >= target.offset || entries.length < read.entries.length) break;
      from = through;
    }
    // Live batches held meanwhile, after the history: each message once.
    while (follower.held && follower.held.length > 0) {
      const batch = follower.held.shift() as StreamBatch;
      const entries =
        through && batch.epoch === through.epoch
          ? batch.entries.filter((entry) => entry.offset > (through as StreamPosition).offset)
          : batch.entries;
      this.#call(follower, batch.epoch, entries);
    }
    follower.held = undefined;
  }

  /**
   * The snapshot of one resource with its position. Rejects with a
   * {@link ResourceError} for a malformed kind or id, an unknown kind, an
   * unknown id, a refusal, a failing provider or an answer that cannot be sent.
   */
  async snapshot(kind: unknown, id: unknown, principal: Principal | null = null): Promise<ResourceSnapshot> {
    return (await this.answer(kind, id, principal)).snapshot;
  }

  /**
   * {@link snapshot}, with its payload serialized once and checked: a
   * `ResourceSnapshot` whose position the stream has reached. Rejects with
   * {@link ResourceError} only.
   * @internal
   */
  async answer(kind: unknown, id: unknown, principal: Principal | null = null): Promise<ResourceAnswer> {
    if (!ResourceKindSchema.safeParse(kind).success) {
      throw new ResourceError(
        ErrorCode.InvalidMessage,
        "a resource kind is 1-64 of letters, digits, '_', '.', '-'",
      );
    }
    if (!ResourceIdSchema.safeParse(id).success) {
      throw new ResourceError(ErrorCode.InvalidMessage, 'a resource id is a string of 1 to 128 characters');
    }
    const name = kind as string;
    const key = id as string;
    const definition = this.#kinds.get(name);
    if (!definition) {
      const known = this.kinds();
      throw new ResourceError(
        ErrorCode.UnknownResource,
        `no resource kind '${name}'; known: ${known.length ? known.join(', ') : '(none)'}`,
      );
    }
    if (this.position().epoch === '') {
      // No stream position yet (the broker has been unreachable since start): nothing to answer with.
      throw new ResourceError(ErrorCode.ResourceUnavailable, 'the stream position is not known yet');
    }
    const timeoutMs = definition.timeoutMs ?? RESOURCE_TIMEOUT_MS;
    if (definition.authorize) {
      let allowed: boolean;
      try {
        allowed = await within(
          definition.authorize(principal, key),
          timeoutMs,
          `the authorize hook of '${name}'`,
        );
      } catch (error) {
        this.onError(error, name, key);
        throw new ResourceError(ErrorCode.ResourceUnavailable, `could not check access to ${name} '${key}'`, {
          cause: error,
        });
      }
      if (!allowed) throw new ResourceError(ErrorCode.Forbidden, `not allowed to read ${name} '${key}'`);
    }
    if (this.#catchingUp()) {
      // A follower from 'start' has not read the history yet: state kept by it is not at the position.
      throw new ResourceError(
        ErrorCode.ResourceUnavailable,
        'the server is reading the stream history for its followers; try again shortly',
      );
    }
    let state: unknown;
    let position: StreamPosition;
    try {
      // The position and the provider's call in one synchronous step: no batch is fanned out between them.
      position = { ...this.position() };
      const result = definition.snapshot(key, { position, principal });
      if (isPromise(result)) {
        state = await within(result, timeoutMs, `the provider of '${name}'`);
        if (state !== undefined && isObject(state) && state.position === undefined) {
          throw new TypeError(
            `the provider of '${name}' answered asynchronously without the position its state reflects`,
          );
        }
      } else {
        state = result;
      }
    } catch (error) {
      this.onError(error, name, key);
      throw new ResourceError(
        ErrorCode.ResourceUnavailable,
        `the provider of '${name}' failed for '${key}'`,
        {
          cause: error,
        },
      );
    }
    if (state === undefined) {
      throw new ResourceError(ErrorCode.ResourceNotFound, `no ${name} '${key}'`);
    }
    let answer: ResourceAnswer;
    try {
      answer = checkAnswer(name, key, state, position);
    } catch (error) {
      this.onError(error, name, key);
      throw new ResourceError(
        ErrorCode.ResourceUnavailable,
        `the provider of '${name}' gave an answer for '${key}' that cannot be sent`,
        { cause: error },
      );
    }
    await this.#checkReached(answer.snapshot, name, key, timeoutMs);
    return answer;
  }

  /** Refuses a snapshot whose position the stream has not reached: past its newest offset, or of another epoch. */
  async #checkReached(
    snapshot: ResourceSnapshot,
    name: string,
    key: string,
    timeoutMs: number,
  ): Promise<void> {
    const delivered = this.position();
    // At or before what this process delivered: reached (the common case, and no question to the broker).
    if (snapshot.epoch === delivered.epoch && snapshot.offset <= delivered.offset) return;
    let head: StreamPosition = delivered;
    if (this.head) {
      try {
        head = await within(this.head(), timeoutMs, 'the broker');
      } catch (error) {
        this.onError(error, name, key);
        throw new ResourceError(
          ErrorCode.ResourceUnavailable,
          `could not check the position of ${name} '${key}' against the stream`,
          { cause: error },
        );
      }
    }
    let problem: string | undefined;
    if (snapshot.epoch !== head.epoch) {
      problem = `a position of epoch '${snapshot.epoch}', and the stream is in epoch '${head.epoch}'`;
    } else if (snapshot.offset > head.offset) {
      problem = `offset ${snapshot.offset}, past the stream's newest (${head.offset})`;
    }
    if (problem === undefined) return;
    const error = new RangeError(`the provider of '${name}' answered ${problem}`);
    this.onError(error, name, key);
    throw new ResourceError(
      ErrorCode.ResourceUnavailable,
      `the provider of '${name}' answered '${key}' at a position the stream has not reached`,
      { cause: error },
    );
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Checks a provider's answer against the `resource` payload's schema and serializes it once.
 * Throws a `TypeError` saying what is wrong (for the log, not for the client).
 */
function checkAnswer(kind: string, id: string, state: unknown, fallback: StreamPosition): ResourceAnswer {
  if (!isObject(state) || Array.isArray(state)) {
    throw new TypeError(
      `the provider of '${kind}' answered ${state === null ? 'null' : typeof state}, not { data } or undefined`,
    );
  }
  const { data, version, position } = state as Partial<ResourceState>;
  if (data === undefined) throw new TypeError(`the provider of '${kind}' answered without data`);
  // Only a missing position means the one the hub handed over: `null` is an invalid one.
  const at: unknown = position === undefined ? fallback : position;
  const snapshot = {
    kind,
    resource_id: id,
    data,
    ...(version === undefined ? {} : { version }),
    epoch: isObject(at) ? at.epoch : at,
    offset: isObject(at) ? at.offset : at,
  } as ResourceSnapshot;
  const parsed = ResourceSnapshotSchema.safeParse(snapshot);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(answer)'}: ${issue.message}`,
    );
    throw new TypeError(`the provider of '${kind}' answered an invalid snapshot: ${issues.join('; ')}`);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new TypeError(`the data of '${kind}' is not JSON: ${(error as Error)?.message ?? String(error)}`, {
      cause: error,
    });
  }
  if (json === undefined) throw new TypeError(`the data of '${kind}' is not JSON (a ${typeof data})`);
  const versionJson = snapshot.version === undefined ? '' : `,"version":${snapshot.version}`;
  return {
    snapshot,
    json: `{"kind":${JSON.stringify(kind)},"resource_id":${JSON.stringify(id)},"data":${json}${versionJson},"epoch":${JSON.stringify(snapshot.epoch)},"offset":${snapshot.offset}}`,
  };
}

/** Where {@link answerGetResource} sends its reply. */
export interface GetResourceReplies {
  /**
   * Queues a `resource` frame (`bytes` long in UTF-8); returns why it cannot be
   * sent (over the connection's budget for answers), or `undefined` once queued.
   */
  answer(frame: string, bytes: number, snapshot: ResourceSnapshot): string | undefined;
  /** Sends a control frame (the `error`). */
  control(frame: object): void;
}

/** Answers one `get_resource` with `resource` or `error` (carrying its `id`); never rejects. */
export async function answerGetResource(
  message: GetResourceMessage,
  registry: ResourceRegistry,
  principal: Principal | null,
  replies: GetResourceReplies,
): Promise<void> {
  const id = message.id === undefined ? {} : { id: message.id };
  const error = (code: ResourceError['code'] | typeof ErrorCode.InternalError, text: string) =>
    replies.control({ type: 'error', ...id, payload: { code, message: text } });
  let answer: ResourceAnswer;
  try {
    answer = await registry.answer(message.payload.kind, message.payload.resource_id, principal);
  } catch (failure) {
    if (failure instanceof ResourceError) error(failure.code, failure.message);
    else error(ErrorCode.InternalError, 'the server failed answering get_resource');
    return;
  }
  const idJson = message.id === undefined ? '' : `,"id":${JSON.stringify(message.id)}`;
  const frame = `{"type":"resource"${idJson},"payload":${answer.json}}`;
  const refused = replies.answer(frame, Buffer.byteLength(frame), answer.snapshot);
  if (refused !== undefined) error(ErrorCode.ResourceUnavailable, refused);
}
