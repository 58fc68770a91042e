import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsObject,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { MAX_RESUME_POSITIONS } from '../../protocol/index.js';

/** One stream position a client holds: the last message it got from that stream. */
export class StreamPositionDto {
  @IsString()
  // Any name a stream can have: a user id is any sub the server accepts (up to 256 characters,
  // accents and spaces included) and a room any name the host gives it. Bounded still, as is the
  // whole message by maxMessageSize.
  @MaxLength(4096)
  @Matches(/^(all|(user|event|room):[\s\S]+)$/, {
    message: 'stream must be all, user:<id>, event:<name> or room:<name>',
  })
  stream!: string;

  @IsString()
  @Matches(/^\d{1,20}(-\d{1,20})?$/, { message: 'offset must be digits (or digits-digits)' })
  offset!: string;

  @IsString()
  @MaxLength(64)
  @Matches(/^[\x21-\x7e]+$/, { message: 'epoch must be printable, without spaces' })
  epoch!: string;
}

/** Data of `resume` (section 9): 1 to 100 positions. */
export class ResumeDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_RESUME_POSITIONS)
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => StreamPositionDto)
  positions!: StreamPositionDto[];
}
