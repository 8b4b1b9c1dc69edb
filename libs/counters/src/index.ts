export { CountersApiModule } from './counters-api.module';
export { CountersWorkerModule } from './counters-worker.module';
export { CountersService } from './counters.service';
export type { CounterIncrement } from './counters.service';
export { CountersController } from './api/counters.controller';
export { serveIncrementRoute } from './api/increment-route';
export {
  IncrementDto,
  IncrementBatchDto,
  incrementSchema,
  incrementBatchSchema,
  counterKeySchema,
} from './api/counters.dto';
export { countersEnv } from './counters.env';
export type { CountersEnv } from './counters.env';
export { COUNTERS_COLLECTION, MAX_COUNTER_KEY_BYTES, MAX_INCREMENTS_PER_BATCH } from './counters.constants';
