import { Injectable } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PUBLIC_DIR = join('src', 'demo', 'public');

/**
 * The folder of the page's files. This module runs from dist/demo/ (`npm start`) and from
 * build/src/demo/ (tests), so walk up from here to the first folder that holds src/demo/public.
 */
export function findPublicDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, PUBLIC_DIR);
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    if (dirname(dir) === dir) {
      throw new Error(`Demo page not found: no ${PUBLIC_DIR}/index.html above ${from}`);
    }
  }
}

/** The demo's page and its script and stylesheet, read once at startup. */
@Injectable()
export class DemoPage {
  private readonly dir = findPublicDir();
  readonly html = this.read('index.html');
  readonly script = this.read('app.js');
  readonly styles = this.read('styles.css');

  private read(name: string): string {
    return readFileSync(join(this.dir, name), 'utf8');
  }
}
