import {
  IsBoolean,
  IsIn,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
} from 'class-validator';

export class TokenRequestDto {
  @IsString()
  @Matches(/^[\w.@-]{1,64}$/, { message: 'user_id must be 1-64 letters, digits, or . @ _ -' })
  user_id!: string;

  @IsOptional()
  @IsBoolean()
  admin?: boolean;
}

export class NotifyDto {
  @IsString()
  @Matches(/\S/, { message: 'message must not be blank' })
  @MaxLength(500)
  message!: string;

  @IsOptional()
  @IsIn(['info', 'warning', 'error'])
  level?: 'info' | 'warning' | 'error';
}

export class ChatSendDto {
  @IsString()
  @Matches(/^[\w-]{1,64}$/, { message: 'room must be 1-64 letters, digits, _ or -' })
  room!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(500)
  text!: string;
}
