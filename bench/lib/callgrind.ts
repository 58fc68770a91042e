/**
 * Instruction counts of a running child under valgrind's callgrind: the child starts with
 * instrumentation off (boot is not counted and runs ~5x faster), and a window is counted by
 * turning it on, off, and dumping. Instructions, unlike CPU time, do not move with the rest of
 * the machine, so two targets can be compared on a noisy, shared machine.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { userInfo } from 'node:os';
import { onPath, STEP_TIMEOUT_MS } from './processes.js';

export function callgrindAvailable(): boolean {
  return onPath('valgrind') && onPath('callgrind_control');
}

/**
 * valgrind and callgrind_control find each other through files named after USER and HOST: both
 * get the same values (the targets are started with HOST=127.0.0.1).
 */
export function callgrindEnv(): NodeJS.ProcessEnv {
  const user = process.env.USER ?? userInfo().username;
  return { ...process.env, USER: user, LOGNAME: user, HOST: '127.0.0.1' };
}

/**
 * The command prefix that runs `node …` under callgrind. V8 generates and patches code, hence
 * `--smc-check`; `--single-threaded` (a node flag, see {@link CALLGRIND_NODE_ARGS}) keeps V8's
 * compiler and GC threads on the counted thread, as their work is part of the cost.
 */
export function callgrindLauncher(outFile: string): string[] {
  return [
    'valgrind',
    '--tool=callgrind',
    '--instr-atstart=no',
    '--smc-check=all-non-file',
    `--callgrind-out-file=${outFile}`,
  ];
}

export const CALLGRIND_NODE_ARGS = ['--single-threaded'];

/** Controls the callgrind of one process; every count is of user-space instructions (Ir). */
export class CallgrindControl {
  private dumps = 0;

  constructor(
    private readonly pid: number,
    private readonly outFile: string,
  ) {}

  /** Instructions executed while `window` ran. */
  async count(window: () => Promise<void>): Promise<number> {
    this.command('--zero');
    this.command('--instr=on');
    try {
      await window();
    } finally {
      this.command('--instr=off');
    }
    this.command('--dump');
    return totalOf(`${this.outFile}.${++this.dumps}`);
  }

  /** Deletes the dumps (the profiles are large and only their totals are used). */
  cleanUp(): void {
    const prefix = `${basename(this.outFile)}`;
    for (const name of readdirSync(dirname(this.outFile))) {
      if (name.startsWith(prefix)) rmSync(`${dirname(this.outFile)}/${name}`, { force: true });
    }
  }

  private command(option: string): void {
    execFileSync('callgrind_control', [option, String(this.pid)], {
      env: callgrindEnv(),
      stdio: 'ignore',
      timeout: STEP_TIMEOUT_MS,
    });
  }
}

/** The `totals:` line of a callgrind dump. */
function totalOf(file: string): number {
  const match = /^totals:\s+(\d+)/m.exec(readFileSync(file, 'utf8'));
  if (!match) throw new Error(`no totals in ${file}`);
  return Number(match[1]);
}
