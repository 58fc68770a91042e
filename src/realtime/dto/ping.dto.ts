import { IsString, MaxLength, ValidateIf } from 'class-validator';

/** Data of `ping`. */
export class PingDto {
  // Checked unless left out: null is not a string (PROTOCOL.md section 4), so it is refused as a
  // null `id`, `timestamp` or `data` is, instead of being echoed back (@IsOptional skips null).
  @ValidateIf((_: object, value: unknown) => value !== undefined)
  @IsString()
  @MaxLength(128)
  pingId?: string;
}
