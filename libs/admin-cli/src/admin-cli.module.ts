import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TimersModule } from '@bufferq/timers';
import { BufferAdmin } from './buffers/buffer-admin';
import { QueueAdmin } from './queues/queue-admin';
import { TimerAdmin } from './timers/timer-admin';

/**
 * The admin CLI's services. It finds the buffers and queues among the providers of the modules the app
 * imports beside it, so the CLI sees exactly the buffered collections and queues the system has.
 */
@Module({
  imports: [DiscoveryModule, TimersModule],
  providers: [BufferAdmin, QueueAdmin, TimerAdmin],
  exports: [BufferAdmin, QueueAdmin, TimerAdmin],
})
export class AdminCliModule {}
