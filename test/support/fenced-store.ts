/**
 * A fenced store: the thing a lock protects, as it should be built. A tiny HTTP server on
 * loopback (in the Jest process) that worker processes write to, each write carrying the
 * writer's fencing token. Per resource it remembers the highest token it has accepted and refuses
 * any lower one, so a holder that lost its lock (paused, partitioned) cannot overwrite the work
 * of a later holder, whatever it believes.
 *
 *   POST /write  {"resource":"r","token":"123","writer":"w1","note":"..."}
 *     -> 200 {"accepted":true,"highest":"123"}  or  409 {"accepted":false,"highest":"130"}
 *
 * Every write is recorded, accepted or not, with its arrival time on the monotonic clock shared
 * by the processes of this machine (process.hrtime.bigint(), ns), so tests can compare it with
 * the grant and loss times that workers report.
 */
import http from 'node:http';
import type net from 'node:net';

export interface StoreWrite {
  resource: string;
  token: bigint;
  writer: string;
  note?: string;
  accepted: boolean;
  /** Highest accepted token of the resource before this write. */
  highestBefore: bigint | undefined;
  /** process.hrtime.bigint() at arrival (ns). */
  at: bigint;
}

export interface FencedStore {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly writes: StoreWrite[];
  accepted(resource?: string): StoreWrite[];
  rejected(resource?: string): StoreWrite[];
  highest(resource: string): bigint | undefined;
  close(): Promise<void>;
}

export async function startFencedStore(): Promise<FencedStore> {
  const writes: StoreWrite[] = [];
  const highest = new Map<string, bigint>();
  const sockets = new Set<net.Socket>();

  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', chunk => (body += chunk));
    req.on('end', () => {
      const at = process.hrtime.bigint();
      if (req.method !== 'POST' || req.url !== '/write') {
        res.writeHead(404).end();
        return;
      }
      let parsed: { resource?: unknown; token?: unknown; writer?: unknown; note?: unknown };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (typeof parsed.resource !== 'string' || typeof parsed.token !== 'string' || typeof parsed.writer !== 'string') {
        res.writeHead(400).end();
        return;
      }
      const token = BigInt(parsed.token);
      const before = highest.get(parsed.resource);
      // Equal tokens are the same holder writing again; only a lower one is stale.
      const accepted = before === undefined || token >= before;
      if (accepted) highest.set(parsed.resource, token);
      writes.push({
        resource: parsed.resource,
        token,
        writer: parsed.writer,
        ...(typeof parsed.note === 'string' ? { note: parsed.note } : {}),
        accepted,
        highestBefore: before,
        at,
      });
      const answer = JSON.stringify({ accepted, highest: String(highest.get(parsed.resource)) });
      res.writeHead(accepted ? 200 : 409, { 'content-type': 'application/json' }).end(answer);
    });
  });
  server.on('connection', socket => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  const filter = (accepted: boolean, resource?: string) =>
    writes.filter(w => w.accepted === accepted && (resource === undefined || w.resource === resource));

  return {
    url: `http://127.0.0.1:${port}`,
    writes,
    accepted: resource => filter(true, resource),
    rejected: resource => filter(false, resource),
    highest: resource => highest.get(resource),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>(resolve => server.close(() => resolve()));
    },
  };
}
