/** The addresses of the listeners a start will open, to check before anything is opened or written. */
import type { DeclaredState } from '../control/declared-state.ts';
import type { ListenerRecord, LoadBalancerRecord } from '../domain/resources.ts';
import type { StoreKind } from '../domain/store-port.ts';
import type { WantedAddress } from './port-probe.ts';

/** The listeners the file declares, where they will listen. */
export function declaredListenerAddresses(declared: DeclaredState): WantedAddress[] {
  return declared.loadBalancers.flatMap((lb) =>
    lb.listeners.map((l) => ({ what: `listener ${lb.name}:${l.port}`, host: l.address ?? '0.0.0.0', port: l.port })),
  );
}

/**
 * The listeners in the state directory that will still be there once the file is applied, where the
 * file does not say itself where they listen: every stored listener when there is no file. With one,
 * a listener at a port the file declares for its load balancer is the file's (checked at the file's
 * address); one the file owned and no longer declares is removed; one created through the API stays,
 * unless it is on a load balancer of the file's that the file no longer declares (deleted with it).
 */
export function persistedListenerAddresses(state: ReadonlyMap<StoreKind, ReadonlyMap<string, unknown>>, declared: DeclaredState | null): WantedAddress[] {
  const lbs = new Map([...(state.get('loadBalancer')?.values() ?? [])].map((v) => [(v as LoadBalancerRecord).arn, v as LoadBalancerRecord]));
  const kept = (l: ListenerRecord): boolean => {
    if (declared === null) return true;
    const lb = lbs.get(l.loadBalancerArn);
    const declaredLb = lb === undefined ? undefined : declared.loadBalancers.find((d) => d.name === lb.name);
    if (declaredLb?.listeners.some((d) => d.port === l.port) === true) return false;
    if (l.source === 'config') return false;
    return lb?.source !== 'config' || declaredLb !== undefined;
  };
  return [...(state.get('listener')?.values() ?? [])]
    .map((v) => v as ListenerRecord)
    .filter(kept)
    .map((l) => ({ what: `listener ${l.arn}`, host: l.address, port: l.port }));
}
