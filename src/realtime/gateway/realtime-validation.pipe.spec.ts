import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import { Transform } from 'class-transformer';
import {
  Allow,
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsDefined,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
} from 'class-validator';
import fc from 'fast-check';
import { EventNamesDto } from '../dto/event-names.dto.js';
import { PingDto } from '../dto/ping.dto.js';
import { ResumeDto } from '../dto/resume.dto.js';
import { UploadCancelDto } from '../dto/upload-cancel.dto.js';
import { RealtimeValidationPipe } from './realtime-validation.pipe.js';
import { NO_SHORTCUT, validationShortcut } from './validation-shortcut.js';

class FlatDto {
  @IsInt()
  @Min(0)
  @Max(10)
  count!: number;

  @IsOptional()
  @IsBoolean()
  flag?: boolean;

  @ValidateIf((dto: FlatDto) => dto.count > 5)
  @IsString()
  @Matches(/^[a-c]+$/)
  label?: string;

  @IsDefined()
  @IsNotEmpty()
  required!: string | number;

  @Allow()
  anything?: unknown;
}

class ChildDto extends FlatDto {
  @IsOptional()
  @IsString()
  @MaxLength(3)
  extra?: string;
}

class EachDto {
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(3)
  @IsInt({ each: true })
  @Min(0, { each: true })
  numbers?: number[];

  @IsString({ each: true })
  label!: string | string[];
}

class TransformedDto {
  @IsString()
  @Transform(({ value }: { value: unknown }) => String(value).trim())
  name!: string;
}

class DefaultsDto {
  @IsOptional()
  @IsString()
  name?: string = 'x';
}

class NoRulesDto {
  name?: string;
}

function fast(pipe: ValidationPipe, value: unknown, metadata: ArgumentMetadata): unknown {
  const shortcut = validationShortcut(pipe);
  assert.ok(shortcut);
  return shortcut(value, metadata);
}

const body = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({
  type: 'body',
  metatype,
});

/** What the plain ValidationPipe (the same options, without the shortcut) answers. */
async function slow(
  pipe: ValidationPipe,
  value: unknown,
  metadata: ArgumentMetadata,
): Promise<{ ok: true; dto: unknown } | { ok: false; error: unknown }> {
  // Its own copy: the pipe strips keys of the value it is given.
  const copy: unknown = structuredClone(value);
  try {
    return {
      ok: true,
      dto: (await ValidationPipe.prototype.transform.call(pipe, copy, metadata)) as unknown,
    };
  } catch (error) {
    return { ok: false, error };
  }
}

const key = fc.constantFrom(
  'count',
  'flag',
  'label',
  'required',
  'anything',
  'extra',
  'pingId',
  'upload_id',
  'name',
  'events',
  'numbers',
  'other',
  '__proto__',
  'constructor',
);
const primitive = fc.oneof(
  fc.string({ maxLength: 140 }),
  fc.constantFrom('', 'abc', 'a'.repeat(128), 'a'.repeat(129), '😀'.repeat(70)),
  fc.integer({ min: -3, max: 13 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
);
const item = fc.oneof(
  fc.string({ maxLength: 210 }),
  fc.constantFrom('a', 'user.status_changed', 'a b', 'é', 'x'.repeat(200), 'x'.repeat(201)),
  fc.integer({ min: -2, max: 5 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant([]),
);
const value = fc.oneof(
  primitive,
  fc.array(item, { maxLength: 4 }),
  fc.array(item, { maxLength: 55 }),
);
// Built as JSON.parse builds it (so that "__proto__" is an own key).
const payload = fc
  .dictionary(key, value, { maxKeys: 5 })
  .map((object) => JSON.parse(JSON.stringify(object)) as unknown);

/** The pipes a realtime handler meets: the demo's global one, then the module's. */
const pipes: [string, () => ValidationPipe][] = [
  ['RealtimeValidationPipe', () => new RealtimeValidationPipe()],
  ['a global ValidationPipe', () => new ValidationPipe({ whitelist: true, transform: true })],
];

describe('RealtimeValidationPipe', () => {
  for (const [pipeName, makePipe] of pipes) {
    for (const metatype of [PingDto, UploadCancelDto, EventNamesDto, FlatDto, ChildDto, EachDto]) {
      it(`${pipeName} gives ${metatype.name} the pipe's own result for flat payloads`, async () => {
        const pipe = makePipe();
        // A DTO instance too: what the module's pipe gets from a global one.
        const input = fc.oneof(
          payload,
          payload.map((value) => Object.assign(new metatype(), value) as unknown),
        );
        await fc.assert(
          fc.asyncProperty(input, async (value) => {
            const expected = await slow(pipe, value, body(metatype));
            const shortcut = fast(pipe, value, body(metatype));
            if (shortcut !== NO_SHORTCUT) {
              assert.ok(expected.ok, 'the shortcut accepted what the pipe refuses');
              assert.equal(Object.getPrototypeOf(shortcut), Object.getPrototypeOf(expected.dto));
              assert.deepEqual({ ...(shortcut as object) }, { ...(expected.dto as object) });
            }
            const got = await pipe.transform(value, body(metatype)).then(
              (dto: unknown) => ({ ok: true as const, dto }),
              (error: unknown) => ({ ok: false as const, error }),
            );
            assert.deepEqual(got, expected);
          }),
          { numRuns: 300 },
        );
      });
    }
  }

  it('takes the shortcut for the usual pings and upload cancels', () => {
    const pipe = new RealtimeValidationPipe();
    assert.ok(fast(pipe, {}, body(PingDto)) instanceof PingDto);
    assert.deepEqual(
      { ...(fast(pipe, { pingId: 'p1' }, body(PingDto)) as object) },
      { pingId: 'p1' },
    );
    assert.deepEqual(
      { ...(fast(pipe, { upload_id: 'u1' }, body(UploadCancelDto)) as object) },
      { upload_id: 'u1' },
    );
    const events = ['chat.message', 'user.status_changed'];
    const subscribe = fast(pipe, { events }, body(EventNamesDto)) as EventNamesDto;
    assert.ok(subscribe instanceof EventNamesDto);
    assert.deepEqual(subscribe.events, events);
    assert.notEqual(subscribe.events, events, 'a new array, as class-transformer makes');
  });

  it('leaves classes the shortcut cannot mirror to the pipe', () => {
    const pipe = new RealtimeValidationPipe();
    const cases: [ArgumentMetadata['metatype'], unknown][] = [
      [TransformedDto, { name: 'a' }],
      [DefaultsDto, {}],
      [NoRulesDto, {}],
      [ResumeDto, { positions: [] }],
    ];
    for (const [metatype, value] of cases) {
      assert.equal(fast(pipe, value, body(metatype)), NO_SHORTCUT, String(metatype?.name));
    }
    // Unvalidated parameters pass through, as the pipe passes them: the payload of a handler
    // without a DTO, and a custom one (the connection).
    assert.equal(fast(pipe, undefined, body(undefined)), undefined);
    const data = {};
    assert.equal(fast(pipe, data, body(Object)), data);
    const connection = {};
    assert.equal(fast(pipe, connection, { type: 'custom', metatype: PingDto }), connection);
  });

  it('gives no shortcut to pipes whose result it cannot vouch for', () => {
    assert.equal(validationShortcut(new ValidationPipe({ whitelist: true })), undefined);
    const implicit = { transform: true, transformOptions: { enableImplicitConversion: true } };
    assert.equal(validationShortcut(new ValidationPipe(implicit)), undefined);
    class OwnPipe extends ValidationPipe {
      override toValidate(): boolean {
        return false;
      }
    }
    assert.equal(validationShortcut(new OwnPipe({ transform: true })), undefined);
  });

  it('answers refused payloads with the pipe error', async () => {
    const pipe = new RealtimeValidationPipe();
    await assert.rejects(pipe.transform({ pingId: 5 }, body(PingDto)), {
      code: 'INVALID_MESSAGE_FORMAT',
      message:
        'Invalid data: pingId must be shorter than or equal to 128 characters; pingId must be a string',
    });
  });

  it('names nested failures by their path, with one prefix', async () => {
    const pipe = new RealtimeValidationPipe();
    const positions = [{ stream: 'nope', offset: '1', epoch: 'e' }];
    await assert.rejects(pipe.transform({ positions }, body(ResumeDto)), {
      code: 'INVALID_MESSAGE_FORMAT',
      message:
        'Invalid data: positions.0.stream must be all, user:<id>, event:<name> or room:<name>',
    });
  });
});
