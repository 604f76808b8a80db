import { RetryableError } from '../plugin-api/errors.ts';

/** Code of a stream update refused because another instance changed the stream since it was read. */
export const STREAM_CONFLICT = 'SSF_ERR_STREAM_CONFLICT';

export function streamConflict(streamId: string): RetryableError {
  return new RetryableError(
    `the stream ${streamId} changed since it was read (another instance wrote it first); nothing was written`,
    { code: STREAM_CONFLICT },
  );
}

export function isStreamConflict(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === STREAM_CONFLICT;
}
