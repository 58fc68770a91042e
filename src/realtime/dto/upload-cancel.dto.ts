import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

export class UploadCancelDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  upload_id!: string;
}
