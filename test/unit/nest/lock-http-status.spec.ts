import {
  EtcdAuthenticationError,
  EtcdUnavailableError,
  InvalidLockArgumentError,
  LockBusyError,
  LockClientClosedError,
  LockError,
  LockKeyError,
  LockLostError,
  LockTimeoutError,
  lockErrorToHttp,
} from '../../../lib/index.js';

describe('lockErrorToHttp: the documented HTTP mapping', () => {
  it.each([
    [new LockBusyError('r'), { status: 409, retryAfter: 1 }],
    [new LockTimeoutError('r', 100), { status: 409, retryAfter: 1 }],
    [new InvalidLockArgumentError('ttl', 'bad'), { status: 400 }],
    [new LockKeyError('order:{params.id}', 'params.id is missing'), { status: 400 }],
    [new LockLostError('r', 'lease expired'), { status: 503 }],
    [new LockClientClosedError(), { status: 503 }],
    [new EtcdUnavailableError('down'), { status: 503, retryAfter: 1 }],
    [new EtcdAuthenticationError('bad password'), { status: 500 }],
    [new LockError('anything else'), { status: 500 }],
  ])('%s → %j', (error, expected) => {
    expect(lockErrorToHttp(error)).toEqual(expected);
  });
});
