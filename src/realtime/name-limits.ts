/**
 * Longest room name. Rooms become registry and stats keys and stream names (`room:<name>`), so
 * they are bounded like the event names a client may subscribe to (200).
 */
export const MAX_ROOM_NAME_LENGTH = 200;

/**
 * Why `value` is not a name of 1 to `max` UTF-16 code units, or undefined when it is one.
 * UTF-16 code units (`String#length`) are what the protocol counts a `type` in (MAX_TYPE_LENGTH);
 * the admin DTO and RealtimeService both ask here, so neither lets through what the other refuses.
 */
export function nameProblem(field: string, value: unknown, max: number): string | undefined {
  if (typeof value === 'string' && value.length > 0 && value.length <= max) return undefined;
  return `${field} must be a string of 1 to ${max} UTF-16 code units (an emoji counts 2)`;
}
