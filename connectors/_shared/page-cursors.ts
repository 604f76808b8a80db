import { RetryableError } from '../../core/plugin-api/index.ts';

/**
 * The page cursors (next links, `after` tokens) one run has followed. An API that hands back a
 * cursor it gave before in the same run would be read forever, the same records each time, and
 * the run would never end nor let the next one start: the run stops with a retryable error
 * instead, keeping what it committed, and the next scheduled run starts over.
 */
export class PageCursors {
  readonly #followed = new Set<string>();

  constructor(private readonly source: string) {}

  /** `cursor`, to follow now; throws when this run followed it before. */
  follow(cursor: string): string {
    if (this.#followed.has(cursor)) {
      throw new RetryableError(
        `${this.source} gave a page cursor it had already given in this run (after ${this.#followed.size} pages); the run stops and the next one starts over`,
        { code: 'SSF_ERR_PAGING_REPEATED' },
      );
    }
    this.#followed.add(cursor);
    return cursor;
  }
}
