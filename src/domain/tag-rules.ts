import { ebbError } from '../shared/errors.ts';
import type { Tag } from './resources.ts';

/**
 * What a tag on a load balancer, listener or target group may be, as ELBv2 has it: the key 1-128
 * characters, the value up to 256, both of Unicode letters, digits, spaces and `_.:/=+-@`
 * (botocore `data/elbv2/2015-12-01/service-2.json`, shapes `TagKey` and `TagValue`), and at most 50
 * tags on one resource (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-tags.html).
 */
const TAG_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const MAX_KEY_LENGTH = 128;
const MAX_VALUE_LENGTH = 256;
export const MAX_TAGS_PER_RESOURCE = 50;

/**
 * Keys ebb keeps for itself, as AWS keeps `aws:` ("reserved for AWS use",
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-tags.html).
 * ebb reads no tag, so none of them could change what it does; the prefix is refused so that one
 * never seems to.
 */
const RESERVED_PREFIX = 'ebb:';

/** Checks a list of tags as given in one call; returns a plain copy. Throws ValidationError, DuplicateTagKeys or TooManyTags. */
export function validateTags(tags: readonly Tag[]): Tag[] {
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.key.length < 1 || t.key.length > MAX_KEY_LENGTH || !TAG_PATTERN.test(t.key)) {
      throw ebbError('ValidationError', `Tag key '${t.key}' is not valid: 1-128 letters, digits, spaces and _.:/=+-@`);
    }
    if (t.key.toLowerCase().startsWith(RESERVED_PREFIX)) {
      throw ebbError('ValidationError', `Tag key '${t.key}' is not allowed: keys starting with '${RESERVED_PREFIX}' are reserved for ebb`);
    }
    if (t.value.length > MAX_VALUE_LENGTH || !TAG_PATTERN.test(t.value)) {
      throw ebbError('ValidationError', `Tag value for '${t.key}' is not valid: up to 256 letters, digits, spaces and _.:/=+-@`);
    }
    if (seen.has(t.key)) throw ebbError('DuplicateTagKeys', `Tag key '${t.key}' is given twice`);
    seen.add(t.key);
  }
  if (tags.length > MAX_TAGS_PER_RESOURCE) throw ebbError('TooManyTags', 'A resource can have at most 50 tags');
  return tags.map((t) => ({ key: t.key, value: t.value }));
}

/** A resource's tags after AddTags: a key given again takes the new value. Throws TooManyTags past the limit. */
export function mergeTags(current: readonly Tag[], added: readonly Tag[]): Tag[] {
  const byKey = new Map(current.map((t) => [t.key, t.value]));
  for (const t of added) byKey.set(t.key, t.value);
  if (byKey.size > MAX_TAGS_PER_RESOURCE) throw ebbError('TooManyTags', 'A resource can have at most 50 tags');
  return [...byKey].map(([key, value]) => ({ key, value }));
}

/** A resource's tags after RemoveTags: keys it does not have are ignored. */
export function removeTagKeys(current: readonly Tag[], keys: readonly string[]): Tag[] {
  return current.filter((t) => !keys.includes(t.key));
}
