import { z } from 'zod';
import { checkGroupName, MAX_GROUP_SIZE } from '../autoscaling/groups.ts';
import { LAUNCHING, TERMINATING } from '../autoscaling/hooks.ts';
import { checkName, checkUserData, MAX_USER_DATA_BYTES } from '../autoscaling/launch-template-rules.ts';
import { bool, checkedText, expect, intIn, leaf, list, oneOf, strict, text } from './schema-parts.ts';

/**
 * The Auto Scaling sections of the file (docs/configuration.md): `autoScaling:`, `launchTemplates:`
 * and `autoScalingGroups:` with their lifecycle hooks. Names and values are AWS's (camelCase, as the
 * rest of the file); each value is checked on its own here, with the EC2 and Auto Scaling rules the
 * API applies, so a value the file accepts is one the API accepts too. Checks that relate values
 * (sizes, names that must exist, what a template runs) are in `autoscaling-declared.ts`.
 */

/** A program argument or environment value: YAML reads `8080` and `true` as a number and a boolean; they are meant as text. */
const word = leaf<string | number | boolean>('a string', (v) => ['string', 'number', 'boolean'].includes(typeof v)).transform((v) => String(v));

/** A program and its arguments, run without a shell. */
const argv = list(word).refine((a) => a.length > 0, expect('a non-empty list: the program, then its arguments'));

const templateName = checkedText(checkName);

const environment = z.record(z.string(), word, expect('a mapping of variable names to values'));

const RUNS = ['command', 'script', 'userData'] as const;

const launchTemplate = strict({
  name: templateName,
  command: argv.optional(),
  // A script as text; the template keeps it base64-encoded, as EC2 keeps user data.
  script: text
    .superRefine((v, ctx) => {
      const bytes = Buffer.byteLength(v);
      if (bytes > MAX_USER_DATA_BYTES) {
        ctx.addIssue({
          code: 'custom',
          message: `is ${bytes} bytes; a script may have at most ${MAX_USER_DATA_BYTES} (EC2's limit on user data): keep it short and have it exec the rest`,
          params: { sentence: true },
        });
      }
    })
    .optional(),
  userData: checkedText(checkUserData).optional(),
  environment: environment.optional(),
  workingDirectory: text.optional(),
  stopTimeoutSeconds: intIn(0, 86_400).optional(),
  versionDescription: leaf<string>('a string of at most 255 characters', (v) => typeof v === 'string' && v.length <= 255).optional(),
}).superRefine((t, ctx) => {
  const given = RUNS.filter((k) => t[k] !== undefined);
  if (given.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: 'says nothing to run: give command (a program and its arguments), script (a shell script) or userData (a base64 script)',
      params: { sentence: true },
    });
  }
  for (const extra of given.slice(1)) {
    ctx.addIssue({
      code: 'custom',
      path: [extra],
      message: `a template runs one thing: give only one of command, script and userData (this one also has ${given[0] ?? ''})`,
      params: { sentence: true },
    });
  }
});

const version = leaf<string | number>(
  '$Default, $Latest or a version number',
  (v) => v === '$Default' || v === '$Latest' || (typeof v === 'number' && Number.isInteger(v) && v >= 1) || (typeof v === 'string' && /^[1-9]\d{0,8}$/.test(v)),
).transform((v) => String(v));

const lifecycleHook = strict({
  name: leaf<string>('1 to 255 letters, digits, -, _ or /', (v) => typeof v === 'string' && /^[A-Za-z0-9\-_/]{1,255}$/.test(v)),
  transition: oneOf([LAUNCHING, TERMINATING] as const),
  heartbeatTimeout: intIn(30, 7200).optional(),
  defaultResult: oneOf(['CONTINUE', 'ABANDON'] as const).optional(),
  notificationTargetURL: leaf<string>('an http:// URL, where ebb POSTs each notification', (v) => typeof v === 'string' && /^http:\/\/[^\s/?#]+(?:[/?#]\S*)?$/.test(v)).optional(),
  notificationCommand: argv.optional(),
  notificationMetadata: leaf<string>(
    'at most 4000 printable ASCII characters',
    (v) => typeof v === 'string' && v.length <= 4000 && /^[\x20-\x7e\r\n\t]*$/.test(v),
  ).optional(),
});

const size = intIn(0, MAX_GROUP_SIZE);

const autoScalingGroup = strict({
  name: checkedText(checkGroupName),
  launchTemplate: templateName,
  launchTemplateVersion: version.optional(),
  minSize: size,
  maxSize: size,
  desiredCapacity: size.optional(),
  targetGroups: list(text).optional(),
  loadBalancerNames: list(text).optional(),
  healthCheckType: oneOf(['EC2', 'ELB'] as const).optional(),
  healthCheckGracePeriod: intIn(0, 172_800).optional(),
  defaultInstanceWarmup: intIn(0, 172_800).optional(),
  terminationPolicies: list(oneOf(['Default', 'OldestInstance', 'NewestInstance', 'OldestLaunchTemplate'] as const)).optional(),
  newInstancesProtectedFromScaleIn: bool.optional(),
  lifecycleHooks: list(lifecycleHook).optional(),
});

/** What ebb's own shutdown does with the instances it launched. */
export const autoScaling = strict({ onShutdown: oneOf(['leave', 'stop'] as const).optional() });
export const launchTemplates = list(launchTemplate);
export const autoScalingGroups = list(autoScalingGroup);
