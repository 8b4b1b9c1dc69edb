import { Module } from '@nestjs/common';
import { DeliveryClock } from './delivery/delivery-clock';
import { DeliveryLeases } from './delivery/delivery-leases';
import { DeliveryOutcomes } from './delivery/delivery-outcomes';
import { timerDeliveryProcessorProvider } from './delivery/timer-delivery.processor';
import { TimerDeliveryService } from './delivery/timer-delivery.service';
import { WebhookSender } from './delivery/webhook/webhook-sender';
import { TimerReconciler } from './scheduling/timer-reconciler';
import { TimerScheduler } from './scheduling/timer-scheduler';
import { TimersDeliveryMetrics } from './delivery/timers-delivery.metrics';
import { TimersModule } from './timers.module';

/** The `timers` worker role: scheduler, reconciler and delivery processor. Safe to run on many replicas. */
@Module({
  imports: [TimersModule],
  providers: [
    WebhookSender,
    DeliveryLeases,
    DeliveryClock,
    DeliveryOutcomes,
    TimerDeliveryService,
    timerDeliveryProcessorProvider,
    TimerScheduler,
    TimerReconciler,
    TimersDeliveryMetrics,
  ],
  exports: [TimerScheduler, TimerReconciler, TimerDeliveryService],
})
export class TimersWorkerModule {}
