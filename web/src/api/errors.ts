/**
 * What a call to the cloud can fail with, as the console tells it apart: the cloud is unreachable,
 * the session is no longer valid (401: expired, revoked, or a wrong password at login), or the cloud
 * answered an error of its own (`{"error": ...}`, shown as it is).
 */

/** The request never got an answer: network down, cloud stopped, or a proxy's 502/503/504. */
export class UnreachableError extends Error {
  constructor(readonly detail: string) {
    super(`cannot reach the Vigie cloud: ${detail}`);
    this.name = 'UnreachableError';
  }
}

/** 401: the token is missing, expired or revoked (or, at login, the credentials are wrong). */
export class UnauthorizedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

/** Any other error answer, with the cloud's own message. */
export class ApiHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiHttpError';
  }
}
