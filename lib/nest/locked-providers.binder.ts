import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { LOCKED_METADATA } from './etcd-lock.constants.js';
import { lockedRuntime } from './locked-runtime.js';
import { LockService } from './lock.service.js';

/** At bootstrap, tells every provider with `@Locked` methods which LockService is theirs. */
@Injectable()
export class LockedProvidersBinder implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly locks: LockService,
  ) {}

  onModuleInit(): void {
    lockedRuntime.setFallback(this.locks);
    for (const { instance } of this.discovery.getProviders()) {
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance);
      const hasLockedMethod = this.scanner
        .getAllMethodNames(prototype)
        .some(name => Reflect.hasMetadata(LOCKED_METADATA, prototype[name]));
      if (hasLockedMethod) lockedRuntime.bind(instance, this.locks);
    }
  }

  onApplicationShutdown(): void {
    if (lockedRuntime.fallback() === this.locks) lockedRuntime.setFallback(undefined);
  }
}
