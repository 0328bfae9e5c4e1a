import { InMemoryLockClient } from '../../lib/testing/index.js';
import { lockClientContract } from './lock-client.contract.js';

lockClientContract('in memory', async () => {
  const client = new InMemoryLockClient({ waitTimeout: 5000 });
  return { client, loseLease: async () => client.loseLease(), close: () => client.close() };
});
