import type { ValidatorOptions } from '@nestjs/common/interfaces/external/validator-options.interface.js';
import { getMetadataStorage, type ValidationArguments } from 'class-validator';
import { createRequire } from 'node:module';
import { isThenable } from './thenable.js';

/**
 * A DTO instance for a payload that certainly passes the realtime ValidationPipe, built exactly as
 * the pipe would build it; undefined when the pipe itself must decide (and word any error).
 */
export type DtoFastCheck = (value: unknown) => object | undefined;

type DtoClass = new () => object;

/** The parts of class-transformer's metadata storage read here (not exported by its index). */
interface TransformerMetadata {
  getStrategy(target: DtoClass): string;
  getExposedMetadatas(target: DtoClass): unknown[];
  getExcludedMetadatas(target: DtoClass): unknown[];
  findTypeMetadata(target: DtoClass, property: string): unknown;
  findTransformMetadatas(target: DtoClass, property: string, type: number): unknown[];
}

const PLAIN_TO_CLASS = 0;
// The same CommonJS instance that the decorators and ValidationPipe use.
const transformerMetadata = (
  createRequire(import.meta.url)('class-transformer/cjs/storage.js') as {
    defaultMetadataStorage: TransformerMetadata;
  }
).defaultMetadataStorage;

/** Keys class-transformer or the pipe treat specially (stripped or skipped). */
const SPECIAL_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

type Rule = (object: object, value: unknown) => unknown;

interface PropertyRules {
  name: string;
  /** All must hold (all are evaluated, as class-validator does) for the checks to apply. */
  conditions: Rule[];
  checks: Rule[];
}

/**
 * Compiles, once per DTO class, what class-validator and class-transformer do for a flat payload:
 * every key a decorated property, every value a string, number or boolean, or an array of those
 * (validators with `each` check every item, as for `subscribe`'s event names). The rules are
 * class-validator's own validators and conditions, called directly instead of through its
 * executor (which rebuilds grouped metadata and error objects per message, and made every
 * `subscribe` several promises). Undefined when the class needs more than that (nested objects,
 * async constraints, class-transformer decorators, default values), so that the pipe handles
 * all of it.
 */
export function compileDtoFastCheck(
  metatype: DtoClass,
  options: ValidatorOptions,
): DtoFastCheck | undefined {
  const storage = getMetadataStorage();
  const metadatas = storage.getTargetValidationMetadatas(
    metatype,
    '',
    options.always ?? false,
    options.strictGroups ?? false,
    options.groups,
  );
  // forbidUnknownValues refuses a class without rules: the pipe words that error.
  if (metadatas.length === 0) return undefined;
  if (!hasNoTransformerMetadata(metatype)) return undefined;
  // Defaults set by the constructor would be stripped or validated apart by the pipe.
  if (Object.keys(new metatype()).length > 0) return undefined;
  const properties = new Map<string, PropertyRules>();
  for (const metadata of metadatas) {
    const name = metadata.propertyName;
    if (typeof name !== 'string' || SPECIAL_KEYS.has(name) || name in metatype.prototype) {
      return undefined;
    }
    if (transformerMetadata.findTypeMetadata(metatype, name)) return undefined;
    if (transformerMetadata.findTransformMetadatas(metatype, name, PLAIN_TO_CLASS).length > 0) {
      return undefined;
    }
    let rules = properties.get(name);
    if (!rules) properties.set(name, (rules = { name, conditions: [], checks: [] }));
    if (metadata.type === 'conditionalValidation') {
      if (metadata.each) return undefined;
      const condition = metadata.constraints[0] as Rule;
      rules.conditions.push(condition);
    } else if (metadata.type === 'customValidation' || metadata.type === 'isDefined') {
      const constraintMetadatas = storage.getTargetValidatorConstraints(metadata.constraintCls);
      if (constraintMetadatas.length === 0) return undefined;
      for (const constraint of constraintMetadatas) {
        if (constraint.async) return undefined;
        const validator = constraint.instance;
        const constraints = metadata.constraints as unknown[];
        const validateIf = metadata.validateIf;
        const property = name;
        const each = metadata.each === true;
        rules.checks.push((object, value) => {
          if (validateIf && !validateIf(object, value)) return true;
          const args: ValidationArguments = {
            targetName: object.constructor.name,
            property,
            object,
            value,
            constraints,
          };
          // `each` on an array: every item, each checked with the whole array as `args.value`.
          return each && Array.isArray(value)
            ? everyItem(value, (item) => validator.validate(item, args))
            : validator.validate(value, args);
        });
      }
    } else if (metadata.type !== 'whitelistValidation') {
      return undefined;
    }
  }
  return buildCheck(metatype, [...properties.values()]);
}

function hasNoTransformerMetadata(metatype: DtoClass): boolean {
  return (
    transformerMetadata.getStrategy(metatype) === 'none' &&
    transformerMetadata.getExposedMetadatas(metatype).length === 0 &&
    transformerMetadata.getExcludedMetadatas(metatype).length === 0
  );
}

function buildCheck(metatype: DtoClass, properties: PropertyRules[]): DtoFastCheck {
  const known = new Set(properties.map((rules) => rules.name));
  return (value) => {
    if (typeof value !== 'object' || value === null) return undefined;
    // A plain object (JSON), or an instance an earlier ValidationPipe (a host's global one) made.
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== metatype.prototype) return undefined;
    const source = value as Record<string, unknown>;
    const keys = Object.keys(source);
    const dto = new metatype() as Record<string, unknown>;
    for (const key of keys) {
      const item = source[key];
      if (!known.has(key)) return undefined;
      if (isPrimitive(item)) dto[key] = item;
      // class-transformer gives an array property a new array of the same items.
      else if (Array.isArray(item) && item.every(isPrimitive)) dto[key] = [...item];
      else return undefined;
    }
    for (const rules of properties) {
      const item = dto[rules.name];
      let applies = true;
      for (const condition of rules.conditions) applies = Boolean(condition(dto, item)) && applies;
      if (!applies) continue;
      for (const check of rules.checks) {
        const valid = check(dto, item);
        // A promise is class-validator's business (it awaits it and words the error).
        if (!valid || isThenable(valid)) return undefined;
      }
    }
    return dto;
  };
}

/** True when `check` holds for every item; a promise (an async check) is returned as it is. */
function everyItem(items: readonly unknown[], check: (item: unknown) => unknown): unknown {
  for (const item of items) {
    const valid = check(item);
    if (!valid || isThenable(valid)) return valid;
  }
  return true;
}

function isPrimitive(value: unknown): value is string | number | boolean {
  const type = typeof value;
  return type === 'string' || type === 'number' || type === 'boolean';
}
