import { type ArgumentMetadata, type PipeTransform, ValidationPipe } from '@nestjs/common';
import type { ValidatorOptions } from '@nestjs/common/interfaces/external/validator-options.interface.js';
import { compileDtoFastCheck, type DtoFastCheck } from './dto-fast-check.js';

/** Returned by a {@link PipeShortcut} that cannot vouch for the value: the pipe must run. */
export const NO_SHORTCUT: unique symbol = Symbol('no shortcut');

/** What a pipe returns for a value, synchronously; {@link NO_SHORTCUT} when its `transform` must run. */
export type PipeShortcut = (value: unknown, metadata: ArgumentMetadata) => unknown;

/** The ValidationPipe settings the shortcut depends on (protected fields of the pipe). */
interface ValidationPipeSettings {
  isTransformEnabled: boolean;
  validatorOptions: ValidatorOptions;
  transformOptions: unknown;
  expectedType: unknown;
  validateCustomDecorators: boolean;
}

/** Methods of ValidationPipe the result depends on: a subclass that overrides one gets no shortcut. */
const PIPE_METHODS = [
  'toValidate',
  'transformPrimitive',
  'toEmptyIfNil',
  'stripProtoKeys',
  'isPrimitive',
  'isBinary',
  'validate',
  'findNestedBinaryValues',
  'hasValidationRules',
] as const;

/** Types ValidationPipe passes through instead of validating (its `toValidate`). */
const NOT_VALIDATED: unknown[] = [String, Boolean, Number, Array, Object, Buffer, Date];

const shortcuts = new WeakMap<PipeTransform, PipeShortcut | null>();

/**
 * A synchronous shortcut for a ValidationPipe with `transform: true` (the module's own, or a
 * host's global one), or undefined for any other pipe. It answers what the pipe would for the
 * values it knows (custom and unvalidated parameters pass through; flat DTO payloads that pass
 * are built by {@link compileDtoFastCheck}); anything else is left to the pipe, errors included.
 */
export function validationShortcut(pipe: PipeTransform): PipeShortcut | undefined {
  let shortcut = shortcuts.get(pipe);
  if (shortcut === undefined) {
    shortcut = createShortcut(pipe) ?? null;
    shortcuts.set(pipe, shortcut);
  }
  return shortcut ?? undefined;
}

function createShortcut(pipe: PipeTransform): PipeShortcut | undefined {
  if (!(pipe instanceof ValidationPipe)) return undefined;
  const prototype = ValidationPipe.prototype as unknown as Record<string, unknown>;
  const own = pipe as unknown as Record<string, unknown>;
  if (PIPE_METHODS.some((method) => own[method] !== prototype[method])) return undefined;
  const settings = pipe as unknown as ValidationPipeSettings;
  if (
    !settings.isTransformEnabled ||
    settings.transformOptions !== undefined ||
    settings.expectedType !== undefined ||
    settings.validateCustomDecorators
  ) {
    return undefined;
  }
  const checks = new Map<unknown, DtoFastCheck | null>();
  return (value, metadata) => {
    // transform: true and no validateCustomDecorators: a custom parameter is returned as it is.
    if (metadata.type === 'custom') return value;
    const { metatype } = metadata;
    if (!metatype || NOT_VALIDATED.includes(metatype)) {
      // Not validated: transformPrimitive converts only named route and query parameters.
      const converts = metadata.data && (metadata.type === 'param' || metadata.type === 'query');
      return converts ? NO_SHORTCUT : value;
    }
    let check = checks.get(metatype);
    if (check === undefined) {
      check = compileDtoFastCheck(metatype as new () => object, settings.validatorOptions) ?? null;
      checks.set(metatype, check);
    }
    const dto = check === null ? undefined : check(value);
    return dto === undefined ? NO_SHORTCUT : dto;
  };
}
