import type { HttpAdapterHost } from '@nestjs/core';

interface ExpressLike {
  disable(setting: string): unknown;
}

/** Stops Express announcing itself (`X-Powered-By: Express`) on every response. */
export function hideFramework(adapterHost: HttpAdapterHost): void {
  const instance: unknown = adapterHost.httpAdapter?.getInstance();
  const express = instance as Partial<ExpressLike> | undefined;
  if (typeof express?.disable === 'function') express.disable('x-powered-by');
}
