/**
 * Errors the transmitter API answers with. The body is `{"err", "description", "code"}`: the
 * RFC 8936 §2.5 error shape (which poll clients parse) plus the stable ssf-bridge code.
 */
export class TransmitterHttpError extends Error {
  readonly status: number;
  readonly err: string;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    err: string,
    description: string,
    code: string,
    headers: Record<string, string> = {},
  ) {
    super(description);
    this.name = 'TransmitterHttpError';
    this.status = status;
    this.err = err;
    this.code = code;
    this.headers = headers;
  }

  body(): { err: string; description: string; code: string } {
    return { err: this.err, description: this.message, code: this.code };
  }
}

export function badRequest(
  description: string,
  code = 'SSF_ERR_TRANSMITTER_BODY_INVALID',
): TransmitterHttpError {
  return new TransmitterHttpError(400, 'invalid_request', description, code);
}

export function streamNotFound(streamId: string): TransmitterHttpError {
  return new TransmitterHttpError(
    404,
    'not_found',
    `no stream ${streamId} for this receiver`,
    'SSF_ERR_TRANSMITTER_STREAM_NOT_FOUND',
  );
}
