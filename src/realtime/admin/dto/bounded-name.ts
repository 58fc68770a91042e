import { ValidateBy, type ValidationOptions } from 'class-validator';
import { nameProblem } from '../../name-limits.js';

/**
 * A string of 1 to `max` UTF-16 code units, with RealtimeService's message. Not MaxLength: that
 * counts code points and skips variation selectors, so it let through names the service refused.
 */
export function IsBoundedName(max: number, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isBoundedName',
      constraints: [max],
      validator: {
        validate: (value: unknown) => nameProblem('', value, max) === undefined,
        defaultMessage: (args) => nameProblem(args?.property ?? 'value', args?.value, max) ?? '',
      },
    },
    options,
  );
}
