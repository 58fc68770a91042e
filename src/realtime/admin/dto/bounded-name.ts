import { ValidateBy, type ValidationOptions } from 'class-validator';
import { nameProblem, type NameRule } from '../../name-limits.js';

/**
 * A name of `rule` (name-limits.ts), with RealtimeService's message. Not MaxLength: that counts
 * code points and skips variation selectors, so it let through names the service refused. With
 * `each`, the message names the first bad entry (`users[1] must ...`).
 */
export function IsName(rule: NameRule, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isName',
      constraints: [rule.max],
      validator: {
        validate: (value: unknown) => nameProblem(rule, value) === undefined,
        defaultMessage: (args) => {
          const field = args?.property ?? 'value';
          const value: unknown = args?.value;
          // For `each`, class-validator hands over the whole array: find the entry it refused.
          if (options?.each && Array.isArray(value)) {
            const index = value.findIndex((item) => nameProblem(rule, item) !== undefined);
            if (index >= 0) return nameProblem(rule, value[index], `${field}[${index}]`) ?? '';
          }
          return nameProblem(rule, value, field) ?? '';
        },
      },
    },
    options,
  );
}
