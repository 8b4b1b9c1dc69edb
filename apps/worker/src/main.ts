import { createWorkerApp } from './worker-app';

void createWorkerApp();
