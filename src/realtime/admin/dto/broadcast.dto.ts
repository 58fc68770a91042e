import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsNotEmpty,
  IsObject,
  IsString,
  MaxLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { MAX_TYPE_LENGTH } from '../../../protocol/index.js';
import { MAX_ROOM_NAME_LENGTH } from '../../name-limits.js';
import { IsBoundedName } from './bounded-name.js';

/** Validated unless left out: `null` is an invalid value, not "no target" (which means everyone). */
const present = (_: object, value: unknown): boolean => value !== undefined;

export class BroadcastTargetDto {
  @ValidateIf(present)
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(10_000)
  @IsString({ each: true })
  @MaxLength(256, { each: true })
  users?: string[];

  @ValidateIf(present)
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  event?: string;

  // The bounds and unit of RealtimeService, which would refuse what passed a looser check here.
  @ValidateIf(present)
  @IsBoundedName(MAX_ROOM_NAME_LENGTH)
  room?: string;
}

export class BroadcastDto {
  @IsBoundedName(MAX_TYPE_LENGTH)
  type!: string;

  @IsObject()
  data!: Record<string, unknown>;

  // Left out, the broadcast reaches everyone; null or anything else that names nobody is refused.
  @ValidateIf(present)
  @IsObject()
  @ValidateNested()
  @Type(() => BroadcastTargetDto)
  target?: BroadcastTargetDto;
}
