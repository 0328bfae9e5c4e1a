/**
 * The protocol between the fault suite (test/faults/helpers.ts and its specs) and fault-worker:
 * one JSON command per line on the worker's stdin, one JSON message per line on its stdout.
 * Times (`t`, `enter`, `exit`) are process.hrtime.bigint() in ns, as strings: CLOCK_MONOTONIC,
 * comparable between the processes of one machine. fault-worker.ts documents what each does.
 */
import type { ScheduleOp } from '../faults/random-schedule.js';

/** The lock mode of an `acquire` or a `contend` (absent: exclusive), as the client's options say it. */
export interface ModeOptions {
  shared?: boolean;
  permits?: number;
}

export type FaultCommand =
  | ({ cmd: 'acquire'; resource: string; waitTimeout?: number } & ModeOptions)
  | { cmd: 'write'; resource: string; note?: string }
  | { cmd: 'release'; resource: string }
  | { cmd: 'hold'; resource: string; tickMs?: number; gapMs?: number }
  | ({ cmd: 'contend'; resource: string; iterations: number; holdMs?: number; waitTimeout?: number; deadlineMs?: number } & ModeOptions)
  | { cmd: 'stop-contending'; resource?: undefined }
  | { cmd: 'schedule'; ops: ScheduleOp[]; deadlineMs?: number; resource?: undefined }
  | { cmd: 'close'; resource?: undefined };

/** How a failure is reported: the error's class name and message. */
export interface ErrorDescription {
  error: string;
  message: string;
}

/** An outcome of one schedule op (see schedule-runner.ts). */
export interface OpOutcome {
  outcome: string;
  error?: string;
  message?: string;
  resolvedAfterLoss?: boolean;
  lockSetSignalStale?: boolean;
}

/** What the worker prints, without the `worker` id it adds to every message. */
export type FaultMessageBody =
  | { type: 'ready'; pid: number }
  | { type: 'acquired'; resource: string; token: string; key: string; lease: string; t: string; seenRevision: string | undefined }
  | ({ type: 'acquire-failed'; resource: string; t: string } & ErrorDescription)
  | { type: 'write'; resource: string; token: string; accepted: boolean; t: string }
  | { type: 'released'; resource: string; t: string }
  | { type: 'holding'; resource: string; t: string }
  | {
      type: 'resumed';
      resource: string;
      gapMs: number;
      abortedAtFirstCheck: boolean;
      lostEventBeforeCheck: boolean;
      throwIfLost: string;
      write: { accepted: boolean };
      t: string;
    }
  /** One critical section of `contend` (no `op`) or of a schedule op (with `op`). */
  | {
      type: 'section';
      op?: ScheduleOp['op'];
      resource: string;
      token: string;
      key: string;
      enter: string;
      exit: string;
      seenRevision: string | undefined;
      writes: boolean[] | Array<{ accepted: boolean; heldAfter: boolean }>;
      lost?: boolean;
    }
  | { type: 'contend-done'; resource: string; sections: number; failures: number }
  | { type: 'grant-unheld'; op: ScheduleOp['op']; resource: string; token: string; key: string; t: string }
  | ({ type: 'op'; n: number; op: ScheduleOp['op']; ms: number; t: string } & OpOutcome)
  | { type: 'schedule-done'; ran: number; skipped: number; ms: number }
  | { type: 'lost'; resource: string; token: string; reason: string | undefined; t: string }
  | { type: 'closed' }
  | ({ type: 'error' } & ErrorDescription);

export type FaultMessage = FaultMessageBody & { worker: string };

export type FaultMessageType = FaultMessage['type'];
