// WebSocket frame encoding for the server side: unmasked text frames written
// into caller-owned buffers. Pure functions over bytes: no socket, no state.

/** Number of decimal digits of a non-negative integer. */
export function digitCount(value: number): number {
  let count = 1;
  while (value >= 10) {
    value = Math.floor(value / 10);
    count += 1;
  }
  return count;
}

/** Size of a server frame carrying `length` payload bytes (header included). */
export function frameSize(length: number): number {
  return length + (length < 126 ? 2 : length < 65536 ? 4 : 10);
}

/** Writes a server (unmasked) text frame header for `length` payload bytes at `at`; returns the payload's offset. */
export function writeHeader(target: Buffer, at: number, length: number): number {
  target[at] = 0x81; // FIN, text
  if (length < 126) {
    target[at + 1] = length;
    return at + 2;
  }
  if (length < 65536) {
    target[at + 1] = 126;
    target.writeUInt16BE(length, at + 2);
    return at + 4;
  }
  target[at + 1] = 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
  target.writeUInt32BE(length >>> 0, at + 6);
  return at + 10;
}

/** Writes `value`'s `digits` decimal digits at `at`. */
export function writeDigits(target: Buffer, at: number, digits: number, value: number): void {
  for (let d = at + digits - 1; d >= at; d--) {
    target[d] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/**
 * Writes a data message: `prefix` (its JSON up to `"sequence":`), the
 * `digits` digits of `sequence`, and the closing `}`, at `at`; returns the
 * offset after it.
 */
export function writeMessage(
  target: Buffer,
  at: number,
  prefix: Buffer,
  sequence: number,
  digits: number,
): number {
  target.set(prefix, at);
  const end = at + prefix.length;
  writeDigits(target, end, digits, sequence);
  target[end + digits] = 0x7d; // '}'
  return end + digits + 1;
}

/** Writes the frame of a data message (header, prefix, `sequence`, `}`) at `at`; returns the offset after it. */
export function writeDataFrame(target: Buffer, at: number, prefix: Buffer, sequence: number): number {
  const digits = digitCount(sequence);
  const payloadAt = writeHeader(target, at, prefix.length + digits + 1);
  return writeMessage(target, payloadAt, prefix, sequence, digits);
}

/** Size of the frame {@link writeDataFrame} writes for `prefix` and `sequence`. */
export function dataFrameSize(prefix: Buffer, sequence: number): number {
  return frameSize(prefix.length + digitCount(sequence) + 1);
}

/** The message (a text frame's payload, no header) of a data message with `sequence`. */
export function dataMessage(prefix: Buffer, sequence: number): Buffer {
  const digits = digitCount(sequence);
  const payload = Buffer.allocUnsafe(prefix.length + digits + 1);
  writeMessage(payload, 0, prefix, sequence, digits);
  return payload;
}

/** Writes a text frame carrying the UTF-8 of `text` at `at`; returns the offset after it. */
export function writeTextFrame(target: Buffer, at: number, text: string): number {
  const payloadAt = writeHeader(target, at, Buffer.byteLength(text));
  return payloadAt + target.write(text, payloadAt);
}

/** Size of the frame {@link writeTextFrame} writes for `text`. */
export function textFrameSize(text: string): number {
  return frameSize(Buffer.byteLength(text));
}
