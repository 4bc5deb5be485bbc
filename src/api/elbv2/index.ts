import type { ActionTable } from '../handler.ts';
import { listenerActions } from './listeners.ts';
import { loadBalancerActions } from './load-balancers.ts';
import { tagActions } from './tags.ts';
import { targetActions } from './targets.ts';
import { targetGroupActions } from './target-groups.ts';

/** Every ELBv2 (2015-12-01) action ebb answers. */
export const elbv2Actions: ActionTable = {
  ...loadBalancerActions,
  ...listenerActions,
  ...targetGroupActions,
  ...targetActions,
  ...tagActions,
};
