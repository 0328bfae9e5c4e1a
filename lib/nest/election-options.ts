import os from 'node:os';
import { InvalidLockArgumentError, assertElectionName, assertElectionPrefix, assertElectionValue, describeValue } from '../core/index.js';

/** The election this application campaigns in by itself (module option `election`). */
export interface AutoElectionOptions {
  /** The election's name: keys `<electionPrefix><name>/<lease hex>`. Default `'default'` (what `@LeaderOnly()` checks). */
  name?: string;
  /** What this instance proclaims (shown by `leader()` and `etcdctl elect -l`). Default `<hostname>:<pid>`. */
  value?: string;
  /**
   * Campaign at application bootstrap (in the background: bootstrap does not wait to lead),
   * campaign again after a loss or a `resign()` (which so hands the lead to the next candidate and
   * queues behind it), and resign on shutdown. Default `true`.
   */
  autoCampaign?: boolean;
}

/** The election options of `EtcdLockModule.forRoot()` (and `EtcdLockTestingModule.forRoot()`). */
export interface ElectionModuleOptions {
  /**
   * Prefix of every election's keys, used as given (not appended to the lock `prefix`), as Go's
   * `concurrency.NewElection(session, "<electionPrefix><name>")` and `etcdctl elect <electionPrefix><name>`
   * use it. Default `'elections/'`.
   */
  electionPrefix?: string;
  /** An election to campaign in automatically, for `@LeaderOnly`. */
  election?: AutoElectionOptions;
}

export interface ResolvedElectionOptions {
  prefix: string;
  election: Required<AutoElectionOptions> | undefined;
}

/** Injection token of the resolved election options. */
export const ELECTION_OPTIONS = Symbol('ELECTION_OPTIONS');
/** Injection token of the application's {@link Elections} backend (etcd, or in memory in tests). */
export const ELECTIONS = Symbol('ELECTIONS');

const AUTO_OPTIONS = new Set(['name', 'value', 'autoCampaign']);

/** Checks the election options at bootstrap, so a bad name fails the start with its cause named. */
export function resolveElectionOptions(options: ElectionModuleOptions | undefined): ResolvedElectionOptions {
  const prefix = options?.electionPrefix ?? 'elections/';
  assertElectionPrefix(prefix);
  const election = options?.election;
  if (election === undefined) return { prefix, election: undefined };
  if (typeof election !== 'object' || election === null) {
    throw new InvalidLockArgumentError('election', `expected { name?, value?, autoCampaign? }, got ${describeValue(election)}`);
  }
  for (const key of Object.keys(election)) {
    if (!AUTO_OPTIONS.has(key)) throw new InvalidLockArgumentError(`election.${key}`, 'unknown option');
  }
  const { name = 'default', value = `${os.hostname()}:${process.pid}`, autoCampaign = true } = election;
  assertElectionName(name);
  assertElectionValue(value);
  if (typeof autoCampaign !== 'boolean') {
    throw new InvalidLockArgumentError('election.autoCampaign', `expected a boolean, got ${describeValue(autoCampaign)}`);
  }
  return { prefix, election: { name, value, autoCampaign } };
}
