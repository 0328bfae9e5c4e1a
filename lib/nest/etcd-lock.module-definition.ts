import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { EtcdLockModuleOptions } from './etcd-lock-module-options.js';

export const {
  ConfigurableModuleClass: ConfigurableEtcdLockModule,
  MODULE_OPTIONS_TOKEN: ETCD_LOCK_MODULE_OPTIONS,
  OPTIONS_TYPE: ETCD_LOCK_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: ETCD_LOCK_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<EtcdLockModuleOptions>({ moduleName: 'EtcdLock' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createEtcdLockOptions')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
