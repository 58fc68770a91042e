/** What the harness tells a target through its environment. */
export interface TargetEnv {
  /** HTTP + WebSocket port. */
  port: number;
  /** Port of the memory probe side-channel. */
  probePort: number;
  secret: string;
}

export function targetEnv(env: NodeJS.ProcessEnv = process.env): TargetEnv {
  const number = (name: string) => {
    const value = Number(env[name]);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a port number`);
    return value;
  };
  if (!env.JWT_SECRET) throw new Error('JWT_SECRET is required');
  return { port: number('PORT'), probePort: number('PROBE_PORT'), secret: env.JWT_SECRET };
}
