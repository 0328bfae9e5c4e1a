export * from './core/public-api.js';
export * from './nest/index.js';
