import { applyDecorators, SetMetadata } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';

export const PUBLIC_ENDPOINT = 'operations:public-endpoint';

/** Health and metrics: reachable without an API key and never rate limited (probes and scrapers). */
export const PublicEndpoint = () => applyDecorators(SetMetadata(PUBLIC_ENDPOINT, true), SkipThrottle());
