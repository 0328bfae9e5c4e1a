export { EtcdLockHealthIndicator, type EtcdLockHealthOptions } from './etcd-lock.health.js';
