import type { ActionTable } from '../handler.ts';
import { listenerCertificateActions } from './listener-certificates.ts';
import { listenerActions, listenerAttributeActions } from './listeners.ts';
import { loadBalancerActions } from './load-balancers.ts';
import { tagActions } from './tags.ts';
import { targetActions } from './targets.ts';
import { targetGroupActions } from './target-groups.ts';

/** Every ELBv2 (2015-12-01) action ebb answers. */
export const elbv2Actions: ActionTable = {
  ...loadBalancerActions,
  ...listenerActions,
  ...listenerAttributeActions,
  ...listenerCertificateActions,
  ...targetGroupActions,
  ...targetActions,
  ...tagActions,
};
