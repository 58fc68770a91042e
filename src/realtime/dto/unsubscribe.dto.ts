import { IsArray, IsString } from 'class-validator';

/**
 * Data of `unsubscribe`: any list of names (PROTOCOL.md section 4 gives no bounds, unlike
 * `subscribe`). A connection may hold more names than one `subscribe` carries
 * (maxSubscriptionsPerConnection), and a name it does not hold is simply not removed, so neither
 * the subscribe bounds nor its name rules apply; maxMessageSize bounds the list.
 */
export class UnsubscribeDto {
  @IsArray()
  @IsString({ each: true })
  events!: string[];
}
