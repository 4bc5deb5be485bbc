import { ebbError } from '../shared/errors.ts';
import { listenerAttributesWithDefaults, validateListenerAttributes } from '../domain/attributes.ts';
import type { ListenerRecord } from '../domain/resources.ts';
import type { CreateListenerInput, ModifyListenerInput } from './inputs.ts';
import type { ListenerCertificateView } from './outputs.ts';
import { withCertificatesAdded, withCertificatesRemoved } from './listener-rules.ts';
import type { ResourceCatalog } from './resource-catalog.ts';
import type { ListenerOpenError } from './routing-publisher.ts';
import { del, put, type StoreTransaction } from './store-transaction.ts';

const PORT_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

export interface ListenerCommandsOptions {
  readonly catalog: ResourceCatalog;
  readonly transaction: StoreTransaction;
  /** Listeners the data planes could not open at the last publication. */
  readonly openErrors: () => Promise<ListenerOpenError[]>;
}

/**
 * The listener commands: create, modify and delete, the certificate list of an HTTPS or TLS listener,
 * and listener attributes. Each checks (the catalog and listener-rules.ts), commits, then publishes;
 * a listener a data plane could not open is rolled back and the command fails. The facade runs each in
 * its serial queue; nothing here queues.
 */
export class ListenerCommands {
  readonly #catalog: ResourceCatalog;
  readonly #transaction: StoreTransaction;
  readonly #openErrors: () => Promise<ListenerOpenError[]>;

  constructor(options: ListenerCommandsOptions) {
    this.#catalog = options.catalog;
    this.#transaction = options.transaction;
    this.#openErrors = options.openErrors;
  }

  async create(input: CreateListenerInput): Promise<ListenerRecord> {
    const record = this.#catalog.buildListener(input);
    await this.#commit(record);
    await this.#rollBackIfUnopened(record, null);
    return record;
  }

  async modify(arn: string, input: ModifyListenerInput): Promise<ListenerRecord> {
    const before = this.#catalog.requireListener(arn);
    const record = this.#catalog.changeListener(before, input);
    await this.#commit(record);
    await this.#rollBackIfUnopened(record, before);
    return record;
  }

  async delete(arn: string): Promise<void> {
    this.#catalog.requireListener(arn);
    await this.#transaction.transact([del('listener', arn)], () => this.#catalog.deleteListener(arn));
  }

  /** The default certificate first (IsDefault true), then the others; none for an HTTP or TCP listener. */
  describeCertificates(arn: string): ListenerCertificateView[] {
    const l = this.#catalog.requireListener(arn);
    return (l.certificateArns ?? []).map((certificateArn, i) => ({ certificateArn, isDefault: i === 0 }));
  }

  /** Adds certificates served by SNI (those the listener has are left as they are); resolves with the ones asked for. */
  async addCertificates(arn: string, certificateArns: readonly string[]): Promise<ListenerCertificateView[]> {
    const l = this.#catalog.requireListener(arn);
    const list = withCertificatesAdded(l, certificateArns, this.#catalog.listenersOf(l.loadBalancerArn), this.#catalog.certificateLookup);
    if (list.length !== l.certificateArns?.length) await this.#commit({ ...l, certificateArns: list });
    return certificateArns.map((certificateArn) => ({ certificateArn, isDefault: false }));
  }

  /** Removes certificates served by SNI; the default one cannot be removed (OperationNotPermitted). */
  async removeCertificates(arn: string, certificateArns: readonly string[]): Promise<void> {
    const l = this.#catalog.requireListener(arn);
    const list = withCertificatesRemoved(l, certificateArns);
    if (list.length !== l.certificateArns?.length) await this.#commit({ ...l, certificateArns: list });
  }

  /** The attributes a listener of its protocol has, defaults filled in (none for HTTP and HTTPS). */
  describeAttributes(arn: string): Record<string, string> {
    const l = this.#catalog.requireListener(arn);
    return listenerAttributesWithDefaults(l.attributes ?? {}, l.protocol);
  }

  /** Sets attributes (`tcp.idle_timeout.seconds`, TCP listeners only); resolves with the full set. */
  async modifyAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    const l = this.#catalog.requireListener(arn);
    validateListenerAttributes(attributes, l.protocol);
    const record: ListenerRecord = { ...l, attributes: { ...(l.attributes ?? {}), ...attributes } };
    await this.#commit(record);
    return listenerAttributesWithDefaults(record.attributes ?? {}, record.protocol);
  }

  async #commit(record: ListenerRecord): Promise<void> {
    await this.#transaction.transact([put('listener', record.arn, record)], () => this.#catalog.setListener(record));
  }

  /** After a listener was published: if a data plane could not bind it, the change is undone and the command fails. */
  async #rollBackIfUnopened(record: ListenerRecord, before: ListenerRecord | null): Promise<void> {
    const failure = (await this.#openErrors()).find((e) => e.listenerArn === record.arn);
    if (failure === undefined) return;
    if (before === null) await this.#transaction.transact([del('listener', record.arn)], () => this.#catalog.deleteListener(record.arn));
    else await this.#transaction.transact([put('listener', before.arn, before)], () => this.#catalog.setListener(before));
    // A port that is taken or not allowed is the usual cause; a TLS listener may also fail on its certificate.
    const todo = PORT_ERRORS.has(failure.code) ? 'choose another port or stop what holds it' : 'correct what the message names and try again';
    throw ebbError('InvalidConfigurationRequest', `Port ${record.port} on ${record.address} could not be opened (${failure.code}: ${failure.message}); ${todo}`);
  }
}
