import { IsOptional, IsString, MaxLength } from 'class-validator';

export class PingDto {
  @IsOptional()
  @IsString()
  @MaxLength(128)
  pingId?: string;
}
