import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { cleanupOpenApiDoc } from 'nestjs-zod';

export const DOCS_PATH = 'docs';

/** The OpenAPI document (from the controllers and their zod DTOs) and its UI at /docs (JSON at /docs-json). */
export function mountOpenApiDocs(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('bufferq api')
    .setDescription('Buffered counters, webhook timers and bulk jobs over Redis, BullMQ and MongoDB')
    .setVersion('1')
    .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'api-key')
    .addSecurityRequirements('api-key')
    .build();
  SwaggerModule.setup(DOCS_PATH, app, cleanupOpenApiDoc(SwaggerModule.createDocument(app, config)));
}
