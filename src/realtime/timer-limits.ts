/**
 * Longest delay Node's timers honour (about 24.8 days): past it `setTimeout` and `setInterval`
 * fire after 1 ms instead, with a TimeoutOverflowWarning. Durations in options are bounded by it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
