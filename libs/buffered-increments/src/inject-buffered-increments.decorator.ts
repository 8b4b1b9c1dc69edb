import { Inject } from '@nestjs/common';
import { bufferedIncrementsToken } from './buffered-increments.constants';

/** Injects the producer for `collection` registered with `BufferedIncrementsModule.forFeature`. */
export const InjectBufferedIncrements = (collection: string): ParameterDecorator => Inject(bufferedIncrementsToken(collection));
