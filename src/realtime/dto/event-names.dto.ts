import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, MaxLength } from 'class-validator';
import { MAX_EVENTS_PER_REQUEST } from '../../protocol/index.js';
import { MAX_EVENT_NAME_LENGTH } from '../name-limits.js';

/**
 * Data of `subscribe`: 1 to 50 strings of at most 200 characters, the longest name there is. A
 * string that is no event name (a space, a control character) is an unknown name, refused in
 * `invalid_events` (SubscriptionService) while the others in the message are still subscribed.
 */
export class EventNamesDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_EVENTS_PER_REQUEST)
  @IsString({ each: true })
  @MaxLength(MAX_EVENT_NAME_LENGTH, { each: true })
  events!: string[];
}
