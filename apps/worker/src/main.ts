import './tracing';
import { createWorkerApp } from './worker-app';

createWorkerApp().catch((error: unknown) => {
  console.error('worker failed to start:', error);
  process.exit(1);
});
