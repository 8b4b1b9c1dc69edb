export { CountersApiModule } from './counters-api.module';
export { CountersWorkerModule } from './counters-worker.module';
export { serveIncrementRoute } from './api/increment-route';
export {
  IncrementDto,
  IncrementBatchDto,
  incrementSchema,
  incrementBatchSchema,
  counterKeySchema,
} from './api/counters.dto';
export { countersEnv } from './counters.env';
export { COUNTERS_COLLECTION } from './counters.constants';
