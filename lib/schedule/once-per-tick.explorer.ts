import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, ModuleRef } from '@nestjs/core';
import { EtcdLockClient, EtcdTickClaims, type LockClient, LockError, type TickClaims } from '../core/index.js';
import { ETCD_LOCK_CLIENT } from '../nest/etcd-lock.constants.js';
import { InMemoryTickClaims } from '../testing/in-memory-tick-claims.js';
import { assertJobName, ONCE_PER_TICK_METADATA, type OncePerTickDefinition } from './once-per-tick.decorator.js';
import { InvalidScheduleError } from './schedule-errors.js';
import { ETCD_LOCK_SCHEDULE_OPTIONS, type EtcdLockScheduleModuleOptions } from './schedule-module-options.js';
import { TickRunner } from './tick-runner.js';
import { TickSchedule } from './tick-schedule.js';
import { tickRuntime } from './tick-runtime.js';
import { TickService } from './tick.service.js';

/** The metadata keys and scheduler types of `@nestjs/schedule` (not exported by it; the same in 6.x and 12.x). */
const SCHEDULER_TYPE = 'SCHEDULER_TYPE';
const SCHEDULE_CRON_OPTIONS = 'SCHEDULE_CRON_OPTIONS';
const SchedulerType = { CRON: 1, TIMEOUT: 2, INTERVAL: 3 } as const;
type SchedulerType = (typeof SchedulerType)[keyof typeof SchedulerType];

interface CronMetadata {
  cronTime: string | Date | object;
  timeZone?: string;
  utcOffset?: number;
}

/**
 * At bootstrap, finds every `@OncePerTick` method, checks that it has a schedule to take ticks
 * from and a name of its own, and binds it to the application's tick claims. Runs before
 * `@nestjs/schedule` starts its cron jobs (they start at application bootstrap).
 */
@Injectable()
export class OncePerTickExplorer implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private claims: TickClaims | undefined;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly moduleRef: ModuleRef,
    private readonly ticks: TickService,
    @Inject(ETCD_LOCK_SCHEDULE_OPTIONS) private readonly options: EtcdLockScheduleModuleOptions,
  ) {}

  onModuleInit(): void {
    const names = new Map<string, string>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const { instance } = wrapper;
      const isStatic = wrapper.isDependencyTreeStatic();
      // A request-scoped provider has no instance here: read its class, to refuse it by name.
      const prototype = isStatic
        ? instance && typeof instance === 'object'
          ? Object.getPrototypeOf(instance)
          : undefined
        : (wrapper.metatype as Function | undefined)?.prototype;
      if (!prototype) continue;
      for (const key of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[key] as Function;
        const definition = Reflect.getMetadata(ONCE_PER_TICK_METADATA, method) as OncePerTickDefinition | undefined;
        if (!definition) continue;
        const label = `${prototype.constructor.name}.${key}`;
        if (!isStatic) throw new InvalidScheduleError(label, 'its provider is request-scoped; @nestjs/schedule cannot schedule it');
        const name = definition.name ?? label;
        assertJobName(name, label);
        const other = names.get(name);
        if (other)
          throw new InvalidScheduleError(
            label,
            `the job name "${name}" is already used by ${other}; give one of them @OncePerTick({ name })`,
          );
        names.set(name, label);
        const claims = this.tickClaims();
        const client = this.lockClient();
        const runner = new TickRunner(
          { name, schedule: scheduleOf(method, label), overlap: definition.overlap },
          claims,
          // LockService.events$ carries them too, beside the claims' lock events.
          event => (this.ticks.emit(event), client.events.emit(event)),
          claims.logger,
          client,
        );
        this.ticks.track(runner.status);
        tickRuntime.bind(instance, key, runner);
      }
    }
  }

  /** Grants the claims' lease before the first tick, so a claim is one round trip. */
  async onApplicationBootstrap(): Promise<void> {
    if (this.claims instanceof EtcdTickClaims) await this.claims.connect();
  }

  /** Keeps the lease until recent ticks' keys are gone (at most 2 s), so no instance can claim them again. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.claims?.close();
  }

  private tickClaims(): TickClaims {
    if (this.claims) return this.claims;
    if (this.options.claims) return (this.claims = this.options.claims);
    const client = this.lockClient();
    const prefix = this.options.prefix ?? 'ticks/';
    this.claims =
      client instanceof EtcdLockClient
        ? new EtcdTickClaims(client, prefix)
        : new InMemoryTickClaims(undefined, { prefix, events: client.events, logger: client.options.logger });
    return this.claims;
  }

  private lockClient(): LockClient {
    try {
      return this.moduleRef.get<LockClient>(ETCD_LOCK_CLIENT, { strict: false });
    } catch (err) {
      throw new LockError('EtcdLockScheduleModule needs EtcdLockModule (or EtcdLockTestingModule) in the application', { cause: err });
    }
  }
}

/**
 * Ticks need a schedule that every instance shares: a `@Cron` expression or date. `@Interval`
 * and `@Timeout` count from each instance's own start, so their firings share no tick times.
 */
function scheduleOf(method: Function, label: string): TickSchedule {
  const type = Reflect.getMetadata(SCHEDULER_TYPE, method) as SchedulerType | undefined;
  if (type === SchedulerType.INTERVAL || type === SchedulerType.TIMEOUT) {
    const what = type === SchedulerType.INTERVAL ? '@Interval' : '@Timeout';
    throw new InvalidScheduleError(
      label,
      `${what} fires relative to each instance's start, so its ticks are not shared across instances; use @Cron (e.g. CronExpression.EVERY_10_SECONDS)`,
    );
  }
  const cron = Reflect.getMetadata(SCHEDULE_CRON_OPTIONS, method) as CronMetadata | undefined;
  if (type !== SchedulerType.CRON || !cron)
    throw new InvalidScheduleError(label, 'the method has no @Cron schedule to take its ticks from');
  try {
    return new TickSchedule(cron.cronTime, cron.timeZone, cron.utcOffset);
  } catch (err) {
    throw new InvalidScheduleError(label, `its @Cron schedule is invalid: ${(err as Error).message}`);
  }
}
