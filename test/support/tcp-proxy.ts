/**
 * A TCP proxy on loopback between a client and one etcd member, to inject network faults without
 * root or iptables:
 *
 *   const proxy = await startTcpProxy(memberUrl);   // proxy.url goes into the client's hosts
 *   proxy.setMode('blackhole');                      // partition: bytes are swallowed, nothing answers
 *   proxy.setMode('reset');                          // every open connection is reset (RST), new ones too
 *   proxy.setMode('pass');                           // heal
 *   await proxy.close();
 *
 * Modes:
 * - `pass`: bytes flow both ways.
 * - `blackhole`: connections stay open (new ones are accepted) but bytes are dropped, in both
 *   directions or only one (`{ direction: 'to-client' }` lets requests reach etcd and loses the
 *   answers). Neither side learns anything: exactly like a partition where packets vanish.
 *   Back in `pass`, a connection whose bytes were dropped is corrupt (an HTTP/2 stream lost
 *   frames), so it is reset at once and the client reconnects.
 * - `reset`: every open connection is destroyed with a TCP RST, and new ones are reset on accept.
 *
 * Latency, independent of the mode: `setDelay({ toServer: 2500 })` holds every chunk travelling to
 * etcd for 2.5 s before forwarding it (the bytes still arrive, as on a slow link);
 * `setDelay({ both: { minMs: 100, maxMs: 400 } })` draws each chunk's delay from that range
 * (jitter). Bytes never overtake each other on a connection: a chunk leaves no earlier than the
 * one before it, whatever its own delay. Delays apply to chunks as they arrive at the proxy, so
 * `setDelay({})` lets new bytes through at once once those still held have left. A side that
 * closes its connection still has what it sent before delivered, then the other side is closed.
 *
 * Every socket is tracked; `close()` destroys them all and closes the listener.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'blackhole' | 'reset';
export type BlackholeDirection = 'both' | 'to-client' | 'to-server';

/** A fixed delay in ms, or a range each chunk's delay is drawn from uniformly. */
export type Delay = number | { minMs: number; maxMs: number };

/** Delays per direction; `both` applies to a direction not given on its own. */
export interface DelaySpec {
  toServer?: Delay;
  toClient?: Delay;
  both?: Delay;
}

export interface TcpProxy {
  /** `http://127.0.0.1:<port>`: use it as an etcd endpoint. */
  readonly url: string;
  readonly port: number;
  readonly target: string;
  readonly mode: ProxyMode;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections currently open (client side). */
  readonly open: number;
  /** Bytes forwarded so far, each way. */
  readonly forwarded: { toServer: number; toClient: number };
  setMode(mode: ProxyMode, options?: { direction?: BlackholeDirection }): void;
  /** Delays the bytes forwarded from now on (see the file's comment); `{}` removes the delay. */
  setDelay(spec: DelaySpec): void;
  /** Chunks held by a delay right now, each way. */
  readonly delayed: { toServer: number; toClient: number };
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
  /** Bytes were dropped on this connection: it cannot carry on after a heal. */
  tainted: boolean;
  /** Drops the delayed bytes of each direction (when the pair is torn down). */
  held: Array<{ drop(): void }>;
}

function drawDelay(delay: Delay | undefined): number {
  if (delay === undefined) return 0;
  if (typeof delay === 'number') return delay;
  return delay.minMs + Math.random() * (delay.maxMs - delay.minMs);
}

/** Starts a proxy on a free loopback port that forwards to `targetUrl` (`http://host:port`). */
export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const targetHost = target.hostname;
  const targetPort = Number(target.port);
  let mode: ProxyMode = 'pass';
  let direction: BlackholeDirection = 'both';
  let accepted = 0;
  const forwarded = { toServer: 0, toClient: 0 };
  const delayed = { toServer: 0, toClient: 0 };
  let delays: DelaySpec = {};
  const pairs = new Set<Pair>();

  const drops = (toClient: boolean) =>
    mode === 'blackhole' && (direction === 'both' || (toClient ? direction === 'to-client' : direction === 'to-server'));

  const destroyPair = (pair: Pair, reset: boolean) => {
    pairs.delete(pair);
    for (const way of pair.held) way.drop();
    if (reset) {
      pair.client.resetAndDestroy();
      pair.server.resetAndDestroy();
    } else {
      pair.client.destroy();
      pair.server.destroy();
    }
  };

  const server = net.createServer({ noDelay: true }, client => {
    accepted++;
    if (mode === 'reset') {
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: targetHost, port: targetPort, noDelay: true });
    const pair: Pair = { client, server: upstream, tainted: false, held: [] };
    pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket, toClient: boolean) => {
      const way = toClient ? 'toClient' : 'toServer';
      // Chunks held by a delay, in arrival order; one timer for the head keeps them in order.
      const queue: Array<{ due: number; chunk: Buffer }> = [];
      let timer: NodeJS.Timeout | undefined;
      let onDrained: (() => void) | undefined;
      const send = (chunk: Buffer) => {
        if (to.destroyed) return;
        to.write(chunk);
        forwarded[way] += chunk.length;
      };
      const pump = () => {
        timer = undefined;
        while (queue.length > 0 && queue[0]!.due <= performance.now()) {
          delayed[way]--;
          send(queue.shift()!.chunk);
        }
        if (queue.length > 0) timer = setTimeout(pump, Math.max(1, queue[0]!.due - performance.now()));
        else onDrained?.();
      };
      from.on('data', (chunk: Buffer) => {
        if (drops(toClient)) {
          pair.tainted = true;
          return;
        }
        const now = performance.now();
        const due = Math.max(now + drawDelay(delays[way] ?? delays.both), queue.at(-1)?.due ?? 0);
        if (due <= now && queue.length === 0) {
          send(chunk);
          return;
        }
        queue.push({ due, chunk });
        delayed[way]++;
        timer ??= setTimeout(pump, due - now);
      });
      pair.held.push({
        drop() {
          clearTimeout(timer);
          delayed[way] -= queue.length;
          queue.length = 0;
        },
      });
      /** Once `from` is gone, what it sent still arrives (as on a slow link), then `to` is closed. */
      return (close: () => void) => {
        if (queue.length === 0) close();
        else onDrained = close;
      };
    };
    const afterToServer = forward(client, upstream, false);
    const afterToClient = forward(upstream, client, true);
    const end = () => destroyPair(pair, false);
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', () => afterToServer(end));
    upstream.on('close', () => afterToClient(end));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    target: targetUrl,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    get forwarded() {
      return { ...forwarded };
    },
    get delayed() {
      return { ...delayed };
    },
    setDelay(spec) {
      delays = { ...spec };
    },
    setMode(next, options = {}) {
      mode = next;
      direction = options.direction ?? 'both';
      if (next === 'reset') {
        for (const pair of [...pairs]) destroyPair(pair, true);
      } else if (next === 'pass') {
        for (const pair of [...pairs]) if (pair.tainted) destroyPair(pair, true);
      }
    },
    async close() {
      for (const pair of [...pairs]) destroyPair(pair, false);
      await new Promise<void>(resolve => server.close(() => resolve()));
    },
  };
}
