import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Subscription } from 'rxjs';
import { RealtimeService } from '../realtime/index.js';

const STEP_MS = 300;
const STEP_PERCENT = 10;
const MAX_RUNNING = 100;

/** Simulated uploads: progress every 300 ms, then completed; cancellable from the client. */
@Injectable()
export class DemoUploadsService implements OnModuleInit, OnModuleDestroy {
  private readonly running = new Map<string, { userId: string; timer: NodeJS.Timeout }>();
  private cancels: Subscription | undefined;

  constructor(private readonly realtime: RealtimeService) {}

  onModuleInit(): void {
    this.cancels = this.realtime.uploadCancelRequested$.subscribe(({ userId, uploadId }) => {
      const upload = this.running.get(uploadId);
      if (!upload || upload.userId !== userId) return;
      this.stop(uploadId);
      void this.realtime.sendUploadCancelled(userId, uploadId);
    });
  }

  onModuleDestroy(): void {
    this.cancels?.unsubscribe();
    for (const uploadId of [...this.running.keys()]) this.stop(uploadId);
  }

  /** Starts an upload for the user; undefined when too many are running. */
  start(userId: string): string | undefined {
    if (this.running.size >= MAX_RUNNING) return undefined;
    const uploadId = `upl_${randomUUID().slice(0, 8)}`;
    let progress = 0;
    const timer = setInterval(() => {
      progress += STEP_PERCENT;
      void this.realtime.sendUploadProgress(userId, uploadId, progress);
      if (progress >= 100) {
        this.stop(uploadId);
        void this.realtime.sendUploadCompleted(userId, uploadId, { url: `/files/${uploadId}` });
      }
    }, STEP_MS);
    this.running.set(uploadId, { userId, timer });
    return uploadId;
  }

  private stop(uploadId: string): void {
    const upload = this.running.get(uploadId);
    if (!upload) return;
    clearInterval(upload.timer);
    this.running.delete(uploadId);
  }
}
