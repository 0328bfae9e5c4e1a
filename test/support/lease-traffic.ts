/** Records lease requests and keepalive traffic of an etcd3 client, for tests that measure loss lead times. */
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export interface LeaseTraffic {
  /** performance.now() of the send of each lease grant request that etcd granted. */
  grantSentAt: number[];
  /** performance.now() of the send of each keepalive that etcd acknowledged with TTL > 0. */
  acked: number[];
  sent: number[];
  /** The latest instant the server may have started its current TTL countdown from. */
  lastAckedSend(): number;
}

/**
 * Records, on the client's own lease calls, when the lease grant and each acknowledged keepalive
 * were SENT: the server cannot expire the lease before (that send time + the granted TTL).
 * Measured independently of the session's bookkeeping. `busyOnAnswerMs` makes the event loop
 * busy for that long on each keepalive answer, before the session handles it.
 */
export function recordLeaseTraffic(etcd: Etcd3, options: { busyOnAnswerMs?: number } = {}): LeaseTraffic {
  const lease = etcd.leaseClient;
  const grant = lease.leaseGrant.bind(lease);
  const keepAlive = lease.leaseKeepAlive.bind(lease);
  const record: LeaseTraffic = {
    grantSentAt: [],
    acked: [],
    sent: [],
    lastAckedSend: () => Math.max(record.grantSentAt.at(-1) ?? -Infinity, record.acked.at(-1) ?? -Infinity),
  };
  // Recorded once granted: after a loss the client asks for a fresh lease at once, and that
  // request, unanswered while etcd is unreachable, starts no countdown.
  lease.leaseGrant = async (req, options) => {
    const sentAt = performance.now();
    const granted = await grant(req, options);
    record.grantSentAt.push(sentAt);
    return granted;
  };
  lease.leaseKeepAlive = async callOptions => {
    const stream: KeepAliveStream = await keepAlive(callOptions);
    const pending: number[] = [];
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    (stream as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
      const at = performance.now();
      pending.push(at);
      record.sent.push(at);
      return write(...args);
    };
    // Registered before the session's own listener, so it runs first on each answer.
    stream.on('data', (res: ILeaseKeepAliveResponse) => {
      const sentAt = pending.shift();
      if (sentAt !== undefined && Number(res.TTL) > 0) record.acked.push(sentAt);
      // A busy event loop: other work runs in the same loop iteration before the session sees
      // the answer (so libuv's cached loop time is that much behind when the session arms timers).
      if (options.busyOnAnswerMs) {
        const until = performance.now() + options.busyOnAnswerMs;
        while (performance.now() < until) {
          // busy
        }
      }
    });
    return stream;
  };
  return record;
}
