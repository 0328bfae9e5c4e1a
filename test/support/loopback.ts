/** Loopback networking for the harness: free ports, and plain HTTP to etcd's gateway. */
import http from 'node:http';
import net from 'node:net';

/** Reserve `count` distinct free loopback ports (bind port 0, read, close). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
      });
      ports.push((server.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map(s => new Promise<void>(resolve => s.close(() => resolve()))));
  }
}

/** One request on a fresh connection; rejects on a connection error or after `timeoutMs`. */
export function httpRequest(
  url: string,
  options: { method: 'GET' | 'POST'; body?: string; timeoutMs: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method,
        agent: false,
        headers: {
          connection: 'close',
          ...(options.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) }),
        },
      },
      res => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', err => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`${options.method} ${url} timed out after ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    req.on('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(options.body);
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
