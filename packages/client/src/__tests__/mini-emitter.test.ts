import { EventEmitter as EventEmitter3 } from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import { EventEmitter as MiniEmitter } from '../mini-emitter.js';

type Events = { a: (n: number) => void; b: () => void };
type Emitter = {
  on(event: keyof Events, fn: (...args: never[]) => void): unknown;
  once(event: keyof Events, fn: (...args: never[]) => void): unknown;
  off(event: keyof Events, fn?: (...args: never[]) => void): unknown;
  emit(event: keyof Events, ...args: unknown[]): boolean;
};

// The IIFE build swaps eventemitter3 for the mini emitter: both must behave the same for what the client uses.
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
