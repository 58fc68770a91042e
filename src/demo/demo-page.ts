import { Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';

/** The demo's single page, read once at startup. */
@Injectable()
export class DemoPage {
  readonly html = readFileSync(
    new URL('../../src/demo/public/index.html', import.meta.url),
    'utf8',
  );
}
