import { ebbError } from '../../shared/errors.ts';
import { readTags, tagsXml } from '../common.ts';
import type { ActionTable } from '../handler.ts';

/** ELBv2 tagging actions (load balancers, target groups and listeners, by ARN). */

export const tagActions: ActionTable = {
  async DescribeTags(p, { control }) {
    const arns = p.requiredList('ResourceArns');
    if (arns.length > 20) throw ebbError('ValidationError', `DescribeTags takes at most 20 ARNs; got ${arns.length}`);
    return {
      TagDescriptions: control.describeTags(arns).map((d) => ({ ResourceArn: d.arn, Tags: tagsXml(d.tags) })),
    };
  },

  async AddTags(p, { control }) {
    const arns = p.requiredList('ResourceArns');
    const tags = readTags(p);
    if (tags === undefined || tags.length === 0) throw ebbError('ValidationError', "1 validation error detected: Value null at 'Tags' failed to satisfy constraint: Member must not be null");
    await control.addTags(arns, tags);
    return {};
  },

  async RemoveTags(p, { control }) {
    const arns = p.requiredList('ResourceArns');
    const keys = p.requiredList('TagKeys');
    await control.removeTags(arns, keys);
    return {};
  },
};
