import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, Matches, MaxLength } from 'class-validator';
import { MAX_EVENTS_PER_REQUEST } from '../../protocol/index.js';
import { EVENT_NAME_PATTERN, MAX_EVENT_NAME_LENGTH } from '../name-limits.js';

/** Data of `subscribe`: 1 to 50 event names. */
export class EventNamesDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_EVENTS_PER_REQUEST)
  @IsString({ each: true })
  @MaxLength(MAX_EVENT_NAME_LENGTH, { each: true })
  // Printable names only: they become index keys, stats keys and log fields.
  @Matches(EVENT_NAME_PATTERN, {
    each: true,
    message: 'events must be printable names without spaces',
  })
  events!: string[];
}
