import { Transform, Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { USER_ID_RULE } from '../../name-limits.js';
import { IsName } from './bounded-name.js';

export class ConnectionsQueryDto {
  // `?user_id=` (empty) means no filter, as forms send it.
  @Transform(({ value }: { value: unknown }) => (value === '' ? undefined : value))
  @IsOptional()
  // An id no user can have is a mistake, not a filter that matches nobody.
  @IsName(USER_ID_RULE)
  user_id?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit: number = 100;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  // Beyond any registry; and offset + limit stays an exact integer for every instance asked.
  @Max(1_000_000_000)
  offset: number = 0;
}
