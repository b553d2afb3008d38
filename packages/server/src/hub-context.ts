import type { Filter } from '@atp/ws-protocol';
import type { Broker } from './broker.js';
import type { HubMetrics } from './metrics.js';
import type { ResolvedOptions } from './options.js';
import type { ResourceRegistry } from './resources.js';
import type { SubscriptionIndex } from './subscription-index.js';
import type { Connection } from './connection.js';
import type { Logger, Principal } from './types.js';

/** What the hub shares with each of its connections. */
export interface HubContext {
  readonly options: ResolvedOptions;
  readonly metrics: HubMetrics;
  readonly index: SubscriptionIndex<Connection>;
  readonly broker: Broker;
  readonly logger: Logger;
  readonly serverId: string;
  readonly resources: ResourceRegistry;
  /** The stream position this process has fanned out up to. */
  position(): { epoch: string; offset: number };
  /** Forgets a connection that is closing: its subscriptions, its slot in the limits and in the client list. */
  release(connection: Connection): void;
  authorizeSubscription(principal: Principal | null, topic: string, filter: Filter): Promise<boolean>;
}
