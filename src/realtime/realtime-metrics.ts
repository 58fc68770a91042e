import { Injectable } from '@nestjs/common';

/** Instance-wide message counters for stats. */
@Injectable()
export class RealtimeMetrics {
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
}
