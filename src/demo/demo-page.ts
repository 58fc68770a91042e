import { Injectable } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
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

/** The compiled SDK folders a browser may load, next to this module's own compiled folder. */
export const SDK_FOLDERS = ['client', 'protocol'] as const;
export type SdkFolder = (typeof SDK_FOLDERS)[number];

/** A plain module file name: no folders, no traversal, no source maps, no tests. */
const SDK_FILE = /^[\w.-]+\.js$/;

export function isSdkFolder(folder: string): folder is SdkFolder {
  return (SDK_FOLDERS as readonly string[]).includes(folder);
}

export function isSdkFileName(name: string): boolean {
  return SDK_FILE.test(name) && !/\.(spec|test)\.js$/.test(name) && !name.startsWith('.');
}

/**
 * Where the compiled SDK lies: dist/demo → dist/client and dist/protocol (`npm start`),
 * build/src/demo → build/src/client and build/src/protocol (tests).
 */
export function sdkDir(
  folder: SdkFolder,
  from: string = dirname(fileURLToPath(import.meta.url)),
): string {
  return resolve(from, '..', folder);
}

/** The demo's pages and their scripts and stylesheets, read once at startup. */
@Injectable()
export class DemoPage {
  private readonly dir = findPublicDir();
  readonly html = this.read('index.html');
  readonly script = this.read('app.js');
  readonly styles = this.read('styles.css');
  readonly adminHtml = this.read('admin.html');
  readonly adminScript = this.read('admin.js');
  readonly adminStyles = this.read('admin.css');

  /** A compiled SDK module's text, or undefined when the name is not one that may be served. */
  async sdkModule(folder: string, name: string): Promise<string | undefined> {
    if (!isSdkFolder(folder) || !isSdkFileName(name)) return undefined;
    const dir = sdkDir(folder);
    const file = resolve(dir, name);
    if (dirname(file) !== dir || !file.startsWith(dir + sep)) return undefined;
    try {
      return await readFile(file, 'utf8');
    } catch {
      return undefined;
    }
  }

  private read(name: string): string {
    return readFileSync(join(this.dir, name), 'utf8');
  }
}
