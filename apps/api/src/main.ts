import './tracing';
import { ConfigService } from '@nestjs/config';
import { createApiApp } from './api-app';
import { ApiEnv } from './config/api.env';

async function bootstrap(): Promise<void> {
  const app = await createApiApp();
  const config = app.get<ConfigService<ApiEnv, true>>(ConfigService);
  await app.listen(config.get('PORT', { infer: true }), config.get('HOST', { infer: true }));
}

bootstrap().catch((error: unknown) => {
  console.error('api failed to start:', error);
  process.exit(1);
});
