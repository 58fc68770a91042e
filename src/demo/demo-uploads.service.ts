import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Subscription } from 'rxjs';
import { RealtimeService } from '../realtime/index.js';

const STEP_MS = 300;
const STEP_PERCENT = 10;
const MAX_RUNNING = 100;
/** From start to upload.completed. */
export const UPLOAD_DURATION_MS = (100 / STEP_PERCENT) * STEP_MS;
/** One user cannot take every slot (anyone can be any user here). */
export const MAX_UPLOADS_PER_USER = 3;

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

  /** Starts an upload for the user, unless too many are running: in all, or of this user. */
  start(userId: string): { uploadId: string } | 'busy' | 'user-busy' {
    if (this.running.size >= MAX_RUNNING) return 'busy';
    let own = 0;
    for (const upload of this.running.values()) if (upload.userId === userId) own++;
    if (own >= MAX_UPLOADS_PER_USER) return 'user-busy';
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
    return { uploadId };
  }

  private stop(uploadId: string): void {
    const upload = this.running.get(uploadId);
    if (!upload) return;
    clearInterval(upload.timer);
    this.running.delete(uploadId);
  }
}
