import { type ArgumentMetadata, BadRequestException, type PipeTransform } from '@nestjs/common';

/** The keys Nest's ValidationPipe deletes from a body at any depth (its prototype-pollution guard). */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses a body that holds a key ValidationPipe would silently delete, so that a broadcast
 * arrives as posted or not at all. Runs before ValidationPipe.
 */
export class ReservedKeysPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body') return value;
    const path = reservedKeyPath(value);
    if (path !== undefined) {
      throw new BadRequestException(
        `${path}: keys named __proto__, constructor or prototype cannot be sent through this API`,
      );
    }
    return value;
  }
}

/** The path of the first reserved key in a parsed JSON value; iterative, as bodies nest deep. */
function reservedKeyPath(root: unknown): string | undefined {
  const stack: [unknown, string][] = [[root, '']];
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    for (const key of Object.keys(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (RESERVED.has(key)) return at;
      stack.push([(value as Record<string, unknown>)[key], at]);
    }
  }
  return undefined;
}
