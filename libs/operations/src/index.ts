export { OperationsModule } from './operations.module';
export { operationsEnv, BOARD_PASSWORD_SECRET, DEFAULT_BOARD_USER, DEFAULT_BOARD_PASSWORD } from './operations.env';
export type { OperationsEnv } from './operations.env';
export { PublicEndpoint } from './access/public-endpoint.decorator';
export { mountOpenApiDocs, DOCS_PATH } from './docs/openapi';
export { BOARD_PATH } from './board/queue-board';
export { requestIdOf } from './request-id';
export { LOG_REDACTION } from './log-redaction';
