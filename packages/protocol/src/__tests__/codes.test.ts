import { describe, expect, it } from 'vitest';
import {
  CloseCode,
  closeCodeDescriptions,
  ErrorCode,
  ErrorMessageSchema,
  errorCodeDescriptions,
  isFatalCloseCode,
} from '../index.js';

describe('CloseCode', () => {
  it.each(Object.entries(CloseCode))(
    '%s (%i) is a standard code or in the application range 4000-4999',
    (_name, code) => {
      expect(
        [1000, 1001, 1007, 1008, 1009, 1011, 1013].includes(code) || (code >= 4000 && code <= 4999),
      ).toBe(true);
    },
  );

  it.each([
    [CloseCode.Normal, false],
    [CloseCode.GoingAway, false],
    [CloseCode.PolicyViolation, false],
    [CloseCode.MessageTooBig, false],
    [CloseCode.InternalError, false],
    [CloseCode.TryAgainLater, false],
    [CloseCode.SessionReplaced, true],
    [CloseCode.Unauthorized, true],
    [CloseCode.Forbidden, true],
    [1006, false],
    [4999, false],
  ])('isFatalCloseCode(%i) is %s', (code, fatal) => {
    expect(isFatalCloseCode(code)).toBe(fatal);
  });

  it('has a description for every code and no other', () => {
    expect(Object.keys(closeCodeDescriptions).map(Number).sort()).toEqual(Object.values(CloseCode).sort());
    for (const description of Object.values(closeCodeDescriptions))
      expect(description.length).toBeGreaterThan(0);
  });

  it('has the values docs/PROTOCOL.md names', () => {
    expect(CloseCode).toMatchObject({
      GoingAway: 1001,
      PolicyViolation: 1008,
      MessageTooBig: 1009,
      TryAgainLater: 1013,
      SessionReplaced: 4000,
    });
  });
});

describe('ErrorCode', () => {
  it('has the codes the protocol defines (docs/PROTOCOL.md)', () => {
    expect(Object.values(ErrorCode)).toEqual(
      expect.arrayContaining([
        'invalid_json',
        'invalid_message',
        'unknown_type',
        'unknown_topic',
        'invalid_filter',
        'forbidden',
        'rate_limited',
        'too_many_subscriptions',
      ]),
    );
  });

  it('has a description for every code and no other', () => {
    expect(Object.keys(errorCodeDescriptions).sort()).toEqual(Object.values(ErrorCode).sort());
  });

  it.each(Object.values(ErrorCode))('%s is a valid code of an error message', (code) => {
    expect(
      ErrorMessageSchema.safeParse({ type: 'error', id: 1, payload: { code, message: 'm' } }).success,
    ).toBe(true);
  });

  it('refuses an error message with a code that is not one of them', () => {
    expect(
      ErrorMessageSchema.safeParse({ type: 'error', payload: { code: 'oops', message: 'm' } }).success,
    ).toBe(false);
  });
});
