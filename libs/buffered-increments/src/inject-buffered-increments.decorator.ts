import { Inject } from '@nestjs/common';
import { bufferedIncrementsToken } from './buffered-increments.constants';

/**
 * Injects the producer registered with `BufferedIncrementsModule.forFeature`: by collection name, or by
 * `options.namespace` for a collection written by several buffers.
 */
export const InjectBufferedIncrements = (collectionOrNamespace: string): ParameterDecorator =>
  Inject(bufferedIncrementsToken(collectionOrNamespace));
