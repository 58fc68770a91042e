/** What the numbers were measured on: machine, versions, date. */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { CORES, pinned } from '../lib/processes.js';

export interface Environment {
  date: string;
  cpu: string;
  cores: number;
  pinned: boolean;
  node: string;
  ws: string;
  socketio: string;
  nest: string;
}

function version(root: string, pkg: string): string {
  try {
    const manifest = JSON.parse(
      readFileSync(`${root}node_modules/${pkg}/package.json`, 'utf8'),
    ) as {
      version?: string;
    };
    return manifest.version ?? '?';
  } catch {
    return '?';
  }
}

export function environment(root: string): Environment {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: CORES,
    pinned,
    node: process.version,
    ws: version(root, 'ws'),
    socketio: version(root, 'socket.io'),
    nest: version(root, '@nestjs/core'),
  };
}
