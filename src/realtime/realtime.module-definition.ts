import { ConfigurableModuleBuilder } from '@nestjs/common';
import { createAdminController } from './admin/realtime-admin.controller.js';
import type { RealtimeModuleOptions } from './realtime-options.js';

/** Options fixed when the module is imported (they shape routes, so they cannot be async). */
export interface RealtimeModuleExtras {
  /** Make RealtimeService injectable everywhere without importing the module. @default true */
  isGlobal: boolean;
  /** Route prefix of the admin HTTP API; `false` leaves the API out. @default 'ws' */
  adminPrefix: string | false;
}

export const {
  ConfigurableModuleClass: RealtimeConfigurableModule,
  MODULE_OPTIONS_TOKEN: REALTIME_MODULE_OPTIONS,
  OPTIONS_TYPE: REALTIME_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REALTIME_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RealtimeModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras<RealtimeModuleExtras>({ isGlobal: true, adminPrefix: 'ws' }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
    controllers: extras.adminPrefix === false ? [] : [createAdminController(extras.adminPrefix)],
  }))
  .build();
