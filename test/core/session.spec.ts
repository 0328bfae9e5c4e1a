/**
 * The session's clocks and keepalive stream (issue 14, point 12), on a real etcd:
 * - a host suspend stops the monotonic clock but not the wall clock (nor etcd): faked with the
 *   session's clock seam, the wall clock jumping ahead must declare the loss;
 * - a keepalive stream that stops answering is left as soon as its oldest keepalive is overdue,
 *   not at the next renewal tick;
 * - an answer arriving on a stream the session abandoned must not renew the lease.
 */
import { Etcd3, type IDuplexStream, type ILeaseKeepAliveRequest, type ILeaseKeepAliveResponse } from 'etcd3';
import { silentLogger } from '../../lib/core/logger.js';
import type { SessionClock } from '../../lib/core/lease-deadline.js';
import { Session } from '../../lib/core/session.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { withTimeout } from './helpers.js';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

const TTL_S = 3;
const RENEW_EVERY_MS = (TTL_S * 1000) / 3;
/** A keepalive unanswered for this long marks its stream stalled (half a renewal interval). */
const STALL_BOUND_MS = RENEW_EVERY_MS / 2;

/** Every keepalive stream the client opens, when it was asked for, and when each keepalive was written on it. */
function recordStreams(etcd: Etcd3) {
  const streams: Array<{ stream: KeepAliveStream; openedAt: number; writes: number[]; answers: number }> = [];
  const keepAlive = etcd.leaseClient.leaseKeepAlive.bind(etcd.leaseClient);
  etcd.leaseClient.leaseKeepAlive = async options => {
    const openedAt = performance.now();
    const stream = await keepAlive(options);
    const entry = { stream, openedAt, writes: [] as number[], answers: 0 };
    streams.push(entry);
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    (stream as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
      entry.writes.push(performance.now());
      return write(...args);
    };
    stream.on('data', () => entry.answers++);
    return stream;
  };
  return streams;
}

describe('session clocks and keepalive stream', () => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  const sessions: Session[] = [];

  /** A session that has renewed its lease once; `renewals()` counts its acknowledged renewals. */
  const openRenewed = async (clock?: SessionClock) => {
    const session = await Session.open(client, { ttl: TTL_S, requestTimeoutMs: 1000, logger: silentLogger, clock });
    sessions.push(session);
    let renewed = 0;
    session.onRenewed(() => renewed++);
    await waitFor(() => renewed >= 1, { timeoutMs: 3000, message: 'a renewal acknowledged' });
    return { session, renewals: () => renewed };
  };

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  beforeEach(() => {
    client = new Etcd3({ hosts: etcd.endpoints });
  });

  afterEach(async () => {
    try {
      etcd.members[0]!.resume();
    } catch {
      // not running
    }
    await Promise.all(sessions.splice(0).map(s => s.close().catch(() => undefined)));
    client.close();
  });

  afterAll(async () => {
    await etcd?.close();
  });

  it('a host suspend (wall clock ahead, monotonic clock stopped) declares the loss at once and at the next timer', async () => {
    let wallOffsetMs = 0;
    const clock: SessionClock = { monotonic: () => performance.now(), wall: () => Date.now() + wallOffsetMs };
    const { session } = await openRenewed(clock);
    const ended = new Promise<{ reason: string; at: number }>(resolve =>
      session.onEnd(end => resolve({ reason: end.reason, at: performance.now() })),
    );
    expect(session.alive).toBe(true);

    // The host slept for 2 TTLs: etcd expired the lease meanwhile, performance.now() did not move.
    wallOffsetMs = 2 * TTL_S * 1000;
    const resumedAt = performance.now();
    expect(session.alive).toBe(false);
    expect(session.remainingMs).toBe(0);
    const { reason, at } = await withTimeout(ended, RENEW_EVERY_MS + 500, 'the loss to be declared');
    expect(reason).toMatch(/not renewed in time/);
    console.log(
      `[session] suspend faked: loss declared ${(at - resumedAt).toFixed(0)} ms after the resume (renewal interval ${RENEW_EVERY_MS} ms)`,
    );
  });

  it('a keepalive stream that stops answering is replaced once its keepalive is overdue, not at the next renewal tick', async () => {
    const streams = recordStreams(client);
    const { session } = await openRenewed();
    expect(streams).toHaveLength(1);
    const first = streams[0]!;
    const answered = first.writes.length;

    etcd.members[0]!.pause();
    await waitFor(() => first.writes.length > answered, {
      timeoutMs: 2 * RENEW_EVERY_MS,
      intervalMs: 5,
      message: 'a keepalive sent while etcd is paused',
    });
    const unansweredAt = first.writes[answered]!;
    await waitFor(() => streams.length >= 2, { timeoutMs: 2 * RENEW_EVERY_MS, intervalMs: 5, message: 'a second keepalive stream' });
    const replacedAfterMs = streams[1]!.openedAt - unansweredAt;
    console.log(
      `[session] stalled stream replaced ${replacedAfterMs.toFixed(0)} ms after its unanswered keepalive (bound ${STALL_BOUND_MS} ms, renewal interval ${RENEW_EVERY_MS} ms)`,
    );
    expect(replacedAfterMs).toBeGreaterThanOrEqual(STALL_BOUND_MS - 2);
    expect(replacedAfterMs).toBeLessThan(STALL_BOUND_MS + 150);
    expect(session.alive).toBe(true);
  });

  it('an answer arriving on an abandoned keepalive stream does not extend the deadline', async () => {
    const streams = recordStreams(client);
    const { session, renewals } = await openRenewed();

    etcd.members[0]!.pause();
    // The session gives up on the first stream and writes its keepalive on a second one.
    await waitFor(() => streams.length >= 2 && streams[1]!.writes.length >= 1, {
      timeoutMs: 2 * RENEW_EVERY_MS,
      intervalMs: 5,
      message: 'a keepalive written on a second stream',
    });
    const renewalsBefore = renewals();
    const remainingBefore = session.remainingMs;
    // An answer (TTL granted in full) arrives late on the abandoned stream, as it does when the
    // stream's bytes were only delayed.
    (streams[0]!.stream as unknown as NodeJS.EventEmitter).emit('data', {
      ID: session.leaseId,
      TTL: String(TTL_S),
      header: {},
    } as unknown as ILeaseKeepAliveResponse);
    expect(renewals()).toBe(renewalsBefore);
    expect(session.remainingMs).toBeLessThanOrEqual(remainingBefore);
  });
});
