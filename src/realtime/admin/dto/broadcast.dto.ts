import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsObject,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { EVENT_RULE, ROOM_RULE, TYPE_RULE, USER_ID_RULE } from '../../name-limits.js';
import { IsName } from './bounded-name.js';

/** Validated unless left out: `null` is an invalid value, not "no target" (which means everyone). */
const present = (_: object, value: unknown): boolean => value !== undefined;

// Every name has the rule RealtimeService applies (name-limits.ts), which would otherwise refuse
// what passed a looser check here: user ids as a token's sub, events as subscribe takes them.
export class BroadcastTargetDto {
  @ValidateIf(present)
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(10_000)
  @IsName(USER_ID_RULE, { each: true })
  users?: string[];

  @ValidateIf(present)
  @IsName(EVENT_RULE)
  event?: string;

  @ValidateIf(present)
  @IsName(ROOM_RULE)
  room?: string;
}

export class BroadcastDto {
  @IsName(TYPE_RULE)
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
