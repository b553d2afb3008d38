import { EventEmitter as EventEmitter3 } from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import { EventEmitter as MiniEmitter } from '../mini-emitter.js';
import { EventEmitter as TinyEmitter } from '../tiny-emitter.js';

type Events = { a: (n: number) => void; b: () => void };
type Fn = (...args: never[]) => void;
type Emitter = {
  on(event: keyof Events, fn: (...args: never[]) => void): unknown;
  once(event: keyof Events, fn: (...args: never[]) => void): unknown;
  off(event: keyof Events, fn?: (...args: never[]) => void): unknown;
  emit(event: keyof Events, ...args: unknown[]): boolean;
};

// The SSE fallback script swaps eventemitter3 for the mini emitter, whose `Fallback` is an emitter for its
// users: both must behave the same.
describe.each([
  ['eventemitter3', () => new EventEmitter3<Events>() as unknown as Emitter],
  ['mini-emitter', () => new MiniEmitter<Events>() as unknown as Emitter],
])('%s', (_name, create) => {
  it('calls listeners in order with the arguments and tells whether there were any', () => {
    const emitter = create();
    const calls: string[] = [];
    emitter.on('a', (n: number) => calls.push(`1:${n}`));
    emitter.on('a', (n: number) => calls.push(`2:${n}`));
    expect(emitter.emit('a', 7)).toBe(true);
    expect(emitter.emit('b')).toBe(false);
    expect(calls).toEqual(['1:7', '2:7']);
  });

  it('calls a once listener once', () => {
    const emitter = create();
    let calls = 0;
    emitter.once('b', () => calls++);
    emitter.emit('b');
    emitter.emit('b');
    expect(calls).toBe(1);
  });

  it('removes every registration of a listener with off(event, fn), and all with off(event)', () => {
    const emitter = create();
    const calls: string[] = [];
    const fn = () => calls.push('fn');
    emitter.on('b', fn);
    emitter.on('b', fn);
    emitter.on('b', () => calls.push('other'));
    emitter.off('b', fn);
    emitter.emit('b');
    emitter.off('b');
    emitter.emit('b');
    expect(calls).toEqual(['other']);
  });

  it('iterates a snapshot: listeners added or removed during emit take effect on the next emit', () => {
    const emitter = create();
    const calls: string[] = [];
    const second = () => calls.push('second');
    emitter.on('b', () => {
      calls.push('first');
      emitter.off('b', second);
      emitter.on('b', () => calls.push('added'));
    });
    emitter.on('b', second);
    emitter.emit('b');
    expect(calls).toEqual(['first', 'second']);
  });
});

type ListenerEmitter = {
  on(event: keyof Events, fn: Fn): unknown;
  off(event: keyof Events, fn?: Fn): unknown;
  listeners(event: keyof Events): Fn[];
};

// The IIFE build swaps eventemitter3 for the tiny emitter: it must behave the same for what the
// client uses (`on`, `off`, `listeners`; the client calls each listener itself, isolated).
describe.each([
  ['eventemitter3', () => new EventEmitter3<Events>() as unknown as ListenerEmitter],
  ['tiny-emitter', () => new TinyEmitter<Events>() as unknown as ListenerEmitter],
  ['mini-emitter', () => new MiniEmitter<Events>() as unknown as ListenerEmitter],
])('%s', (_name, create) => {
  it('lists the listeners of an event in the order they were added, none for another event', () => {
    const emitter = create();
    const first = () => {};
    const second = () => {};
    emitter.on('a', first);
    emitter.on('a', second);
    emitter.on('a', first);
    expect(emitter.listeners('a')).toEqual([first, second, first]);
    expect(emitter.listeners('b')).toEqual([]);
  });

  it('removes every registration of a listener with off(event, fn), and all with off(event)', () => {
    const emitter = create();
    const fn = () => {};
    const other = () => {};
    emitter.on('b', fn);
    emitter.on('b', fn);
    emitter.on('b', other);
    emitter.on('a', fn);
    emitter.off('b', fn);
    expect(emitter.listeners('b')).toEqual([other]);
    expect(emitter.listeners('a')).toEqual([fn]);
    emitter.off('b');
    expect(emitter.listeners('b')).toEqual([]);
    emitter.off('b', fn);
    expect(emitter.listeners('b')).toEqual([]);
  });

  it('hands out a snapshot: listeners added or removed afterwards do not change it', () => {
    const emitter = create();
    const first = () => {};
    const second = () => {};
    emitter.on('b', first);
    emitter.on('b', second);
    const snapshot = emitter.listeners('b');
    emitter.off('b', second);
    emitter.on('b', () => {});
    emitter.off('b');
    expect(snapshot).toEqual([first, second]);
  });
});
