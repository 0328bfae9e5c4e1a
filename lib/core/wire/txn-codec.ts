/**
 * Protocol Buffers encoding of the few etcd messages on the lock's hot path, written by hand.
 *
 * etcd3 builds every request through protobufjs' `fromObject` (Long conversions, oneof checks)
 * and turns every response back into plain objects with `toObject`; for a transaction that is a
 * large part of the client's CPU per call, and with one client doing one acquisition at a time
 * that CPU is latency. These encoders write the bytes directly and the decoder reads only the fields
 * the lock needs.
 *
 * Field numbers are etcd's `rpc.proto` and `kv.proto` (stable since etcd 3.0).
 */

/** A key read back from etcd: the lock needs its name and create revision (the fencing token). */
export interface WireKey {
  key: Buffer;
  /** Decimal, as etcd3 reports int64 values. */
  createRevision: string;
}

/** What the lock reads from a `TxnResponse`. */
export interface WireTxnResponse {
  /** The store's revision after the transaction (its own revision, if it wrote). */
  revision: string;
  succeeded: boolean;
  /** The keys of each range response, in request order (empty for other operations). */
  ranges: WireKey[][];
}

/**
 * A `Compare` on a key's create revision (`create_revision(key) == revision`; `0`: the key does
 * not exist). With `rangeEnd`, it holds for every key of `[key, rangeEnd)`.
 */
export interface CreateRevisionIs {
  key: Buffer;
  rangeEnd?: Buffer;
  /** Decimal int64. */
  createRevision: string;
}

/** A `RangeRequest` over `[key, rangeEnd)`, keys only. */
export interface KeysRange {
  key: Buffer;
  rangeEnd?: Buffer;
  limit?: number;
  /** Newest first by create revision. */
  newestFirst?: boolean;
  /** Oldest first by create revision. */
  oldestFirst?: boolean;
  /** Decimal int64: only keys created at or before this revision. */
  maxCreateRevision?: string;
}

export type WireOp = { put: { key: Buffer; value: Buffer; lease: string } } | { range: KeysRange } | { deleteKey: Buffer };

export interface WireTxn {
  compare: CreateRevisionIs[];
  success: WireOp[];
  failure?: WireOp[];
}

const VARINT = 0;
const LENGTH_DELIMITED = 2;

// Enum values of rpc.proto.
const COMPARE_TARGET_CREATE = 1;
const SORT_ORDER_ASCEND = 1;
const SORT_ORDER_DESCEND = 2;
const SORT_TARGET_CREATE = 2;

/** Encodes a `TxnRequest`. */
export function encodeTxn(txn: WireTxn): Buffer {
  const out = new Writer();
  for (const compare of txn.compare) out.message(1, encodeCompare(compare));
  for (const op of txn.success) out.message(2, encodeOp(op));
  for (const op of txn.failure ?? []) out.message(3, encodeOp(op));
  return out.finish();
}

function encodeCompare({ key, rangeEnd, createRevision }: CreateRevisionIs): Buffer {
  // result EQUAL is 0, the default, so it is not written; create_revision is inside a oneof,
  // so it is written even when 0.
  const out = new Writer().varint(2, COMPARE_TARGET_CREATE).bytes(3, key).int64(5, createRevision, true);
  if (rangeEnd) out.bytes(64, rangeEnd);
  return out.finish();
}

function encodeOp(op: WireOp): Buffer {
  const out = new Writer();
  if ('put' in op) {
    const { key, value, lease } = op.put;
    out.message(2, new Writer().bytes(1, key).bytes(2, value).int64(3, lease).finish());
  } else if ('range' in op) {
    out.message(1, encodeRange(op.range));
  } else {
    out.message(3, new Writer().bytes(1, op.deleteKey).finish());
  }
  return out.finish();
}

function encodeRange(range: KeysRange): Buffer {
  const out = new Writer().bytes(1, range.key);
  if (range.rangeEnd) out.bytes(2, range.rangeEnd);
  if (range.limit) out.varint(3, range.limit);
  if (range.newestFirst) out.varint(5, SORT_ORDER_DESCEND).varint(6, SORT_TARGET_CREATE);
  else if (range.oldestFirst) out.varint(5, SORT_ORDER_ASCEND).varint(6, SORT_TARGET_CREATE);
  out.varint(8, 1); // keys_only
  if (range.maxCreateRevision !== undefined) out.int64(13, range.maxCreateRevision);
  return out.finish();
}

/** Decodes the parts of a `TxnResponse` the lock uses. */
export function decodeTxnResponse(buf: Buffer): WireTxnResponse {
  const res: WireTxnResponse = { revision: '0', succeeded: false, ranges: [] };
  const reader = new Reader(buf, 0, buf.length);
  while (reader.more()) {
    const [field, type] = reader.tag();
    if (field === 1 && type === LENGTH_DELIMITED) res.revision = readHeaderRevision(reader.sub());
    else if (field === 2 && type === VARINT) res.succeeded = reader.uint() !== 0;
    else if (field === 3 && type === LENGTH_DELIMITED) res.ranges.push(readResponseOpKeys(reader.sub()));
    else reader.skip(type);
  }
  return res;
}

function readHeaderRevision(reader: Reader): string {
  let revision = '0';
  while (reader.more()) {
    const [field, type] = reader.tag();
    if (field === 3 && type === VARINT) revision = reader.int64();
    else reader.skip(type);
  }
  return revision;
}

/** The keys of a `ResponseOp` that holds a `RangeResponse`; none for any other response. */
function readResponseOpKeys(reader: Reader): WireKey[] {
  const keys: WireKey[] = [];
  while (reader.more()) {
    const [field, type] = reader.tag();
    if (field !== 1 || type !== LENGTH_DELIMITED) {
      reader.skip(type);
      continue;
    }
    const range = reader.sub();
    while (range.more()) {
      const [rangeField, rangeType] = range.tag();
      if (rangeField === 2 && rangeType === LENGTH_DELIMITED) keys.push(readKeyValue(range.sub()));
      else range.skip(rangeType);
    }
  }
  return keys;
}

function readKeyValue(reader: Reader): WireKey {
  const kv: WireKey = { key: Buffer.alloc(0), createRevision: '0' };
  while (reader.more()) {
    const [field, type] = reader.tag();
    if (field === 1 && type === LENGTH_DELIMITED) kv.key = reader.bytes();
    else if (field === 2 && type === VARINT) kv.createRevision = reader.int64();
    else reader.skip(type);
  }
  return kv;
}

/** Appends fields to a list of chunks; a nested message is encoded first, then framed. */
class Writer {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  varint(field: number, value: number): this {
    return this.raw(varintBytes(field * 8 + VARINT), varintBytes(value));
  }

  /** An int64 given as a decimal string; 0 is skipped unless `always` (a oneof member). */
  int64(field: number, decimal: string, always = false): this {
    const value = BigInt.asUintN(64, BigInt(decimal));
    if (value === 0n && !always) return this;
    return this.raw(varintBytes(field * 8 + VARINT), bigVarintBytes(value));
  }

  bytes(field: number, value: Buffer): this {
    if (value.length === 0) return this;
    return this.raw(varintBytes(field * 8 + LENGTH_DELIMITED), varintBytes(value.length), value);
  }

  message(field: number, encoded: Buffer): this {
    return this.raw(varintBytes(field * 8 + LENGTH_DELIMITED), varintBytes(encoded.length), encoded);
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }

  private raw(...chunks: Buffer[]): this {
    for (const chunk of chunks) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    return this;
  }
}

function varintBytes(value: number): Buffer {
  if (value < 0x80) return Buffer.of(value);
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

function bigVarintBytes(value: bigint): Buffer {
  if (value <= BigInt(Number.MAX_SAFE_INTEGER)) return varintBytes(Number(value));
  const bytes: number[] = [];
  while (value >= 0x80n) {
    bytes.push(Number(value & 0x7fn) | 0x80);
    value >>= 7n;
  }
  bytes.push(Number(value));
  return Buffer.from(bytes);
}

/** Reads fields of one message, `buf[pos, end)`. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    private pos: number,
    private readonly end: number,
  ) {}

  more(): boolean {
    return this.pos < this.end;
  }

  tag(): [field: number, type: number] {
    const tag = this.uint();
    return [Math.floor(tag / 8), tag % 8];
  }

  /** A varint that fits a double exactly (tags, lengths, booleans, enums). */
  uint(): number {
    let value = 0;
    for (let scale = 1; ; scale *= 0x80) {
      const byte = this.byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
  }

  /** An int64 varint, as a decimal string. */
  int64(): string {
    const start = this.pos;
    const value = this.uint();
    if (Number.isSafeInteger(value)) return String(value);
    this.pos = start;
    let big = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = this.byte();
      big |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asIntN(64, big).toString();
    }
  }

  bytes(): Buffer {
    const length = this.uint();
    const start = this.pos;
    this.advance(length);
    return this.buf.subarray(start, this.pos);
  }

  sub(): Reader {
    const length = this.uint();
    const start = this.pos;
    this.advance(length);
    return new Reader(this.buf, start, this.pos);
  }

  skip(type: number): void {
    if (type === VARINT) this.uint();
    else if (type === LENGTH_DELIMITED) this.advance(this.uint());
    else if (type === 1) this.advance(8);
    else if (type === 5) this.advance(4);
    else throw new Error(`etcd response: unsupported protobuf wire type ${type}`);
  }

  private byte(): number {
    if (this.pos >= this.end) throw new Error('etcd response: truncated protobuf message');
    return this.buf[this.pos++];
  }

  private advance(length: number): void {
    if (this.pos + length > this.end) throw new Error('etcd response: truncated protobuf message');
    this.pos += length;
  }
}
