import { type ArgumentMetadata, BadRequestException, type PipeTransform } from '@nestjs/common';
import { MAX_JSON_DEPTH } from '../../protocol/index.js';

/** The keys Nest's ValidationPipe deletes from a body at any depth (its prototype-pollution guard). */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses a body that holds a key ValidationPipe would silently delete, so that a broadcast
 * arrives as posted or not at all; and one nested deeper than a client may send (MAX_JSON_DEPTH),
 * which ValidationPipe's recursive transform would otherwise answer with a stack overflow (500).
 * Runs before ValidationPipe.
 */
export class ReservedKeysPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body') return value;
    const problem = bodyProblem(value);
    if (problem !== undefined) throw new BadRequestException(problem);
    return value;
  }
}

/** What is wrong with a parsed JSON body, if anything; iterative, as bodies nest deep. */
function bodyProblem(root: unknown): string | undefined {
  const stack: [unknown, string, number][] = [[root, '', 1]];
  while (stack.length > 0) {
    const [value, path, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_JSON_DEPTH) return `The body is nested deeper than ${MAX_JSON_DEPTH} levels`;
    for (const key of Object.keys(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (RESERVED.has(key)) {
        return `${at}: keys named __proto__, constructor or prototype cannot be sent through this API`;
      }
      stack.push([(value as Record<string, unknown>)[key], at, depth + 1]);
    }
  }
  return undefined;
}
