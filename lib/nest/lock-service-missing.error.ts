import { LockError } from '../core/index.js';

/**
 * A `@Locked` provider method was called on an instance that Nest did not create (`new MyService()`,
 * a `useFactory`/`useValue` provider), so no `LockService` was injected into it.
 */
export class LockServiceMissingError extends LockError {
  constructor(method: string) {
    super(
      `@Locked method ${method} was called on an instance without a LockService: Nest injects it only into ` +
        'instances it creates from the class (a class provider in a module that imports EtcdLockModule); ' +
        'get the instance from Nest, or use LockService.withLock',
    );
  }
}
