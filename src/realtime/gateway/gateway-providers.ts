import type { INestApplicationContext } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/internal';

const GATEWAY_METADATA = 'websockets:is_gateway';

/** A gateway provider and the key of the module that declares it. */
export interface GatewayProvider {
  moduleKey: string;
  wrapper: InstanceWrapper;
}

/**
 * Every gateway of the app, found as Nest's SocketModule finds them: module by module, every
 * provider that is a class with gateway metadata, in the same order.
 */
export function* gatewayProviders(app: INestApplicationContext): Generator<GatewayProvider> {
  for (const [moduleKey, moduleRef] of app.get(ModulesContainer, { strict: false })) {
    for (const wrapper of moduleRef.providers.values()) {
      if (!wrapper || wrapper.isNotMetatype || typeof wrapper.metatype !== 'function') continue;
      if (Reflect.getMetadataKeys(wrapper.metatype).includes(GATEWAY_METADATA)) {
        yield { moduleKey, wrapper };
      }
    }
  }
}
