import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, Matches, MaxLength } from 'class-validator';
import { MAX_EVENTS_PER_REQUEST } from '../../protocol/index.js';

/** Data of `subscribe` and `unsubscribe`: 1 to 50 event names. */
export class EventNamesDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_EVENTS_PER_REQUEST)
  @IsString({ each: true })
  @MaxLength(200, { each: true })
  // Printable names only: they become index keys, stats keys and log fields.
  @Matches(/^[\x21-\x7e]+$/, {
    each: true,
    message: 'events must be printable names without spaces',
  })
  events!: string[];
}
