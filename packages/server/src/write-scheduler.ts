// Frames are written at the end of the tick they were produced in: a runner
// publishing 10 messages in one tick costs each socket one write (one syscall)
// instead of 10. One setImmediate serves every writer of the process.

/** Something with frames due at the end of this tick. */
export interface ScheduledWriter {
  /** Writes what is due. */
  writeDue(): void;
  /** `writeDue` threw: give up the connection (its client reconnects and resumes from history). */
  writeFailed(): void;
}

let due: ScheduledWriter[] = [];

function flushDue(): void {
  const writers = due;
  due = [];
  for (const writer of writers) {
    try {
      writer.writeDue();
    } catch {
      // Never expected; one broken connection must not keep the others' frames (or crash the process).
      writer.writeFailed();
    }
  }
}

/**
 * Writes what is due now rather than at the end of the tick: for work that
 * would otherwise hold those frames back (replays write live fan-out's frames
 * before they take their turn).
 */
export function writeDueNow(): void {
  if (due.length > 0) flushDue();
}

/** Has `writer.writeDue()` called once at the end of this tick (call it once per tick per writer). */
export function scheduleWrite(writer: ScheduledWriter): void {
  if (due.length === 0) setImmediate(flushDue);
  due.push(writer);
}
