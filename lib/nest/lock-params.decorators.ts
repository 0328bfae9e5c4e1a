import { createParamDecorator } from '@nestjs/common';
import { lockScope } from './held-locks.js';

/** Injects the lock held for this `@Locked` handler (`fencingToken`, `signal`, ...). */
export const CurrentLock = createParamDecorator(() => lockScope.getStore()?.current);

/** Injects the AbortSignal that fires when this handler's lock is lost. */
export const LockSignal = createParamDecorator(() => lockScope.getStore()?.current.signal);
