/**
 * Typed errors, one class per public error code of DESIGN §4 (and the resource errors), as in
 * the Python SDK's `keyplane.sdk.errors`.
 *
 * Every one is a `KeyplaneError` with `.code`, `.message`, `.status` and the decoded `.body`;
 * catch the base class, a family (`AuthenticationError`, `PermissionError`) or one code.
 */

/** A decoded JSON object (an error body, a model's raw object, free JSON such as configs). */
export type JsonObject = { [key: string]: unknown };

export interface ErrorInit {
  status?: number;
  body?: JsonObject;
  cause?: unknown;
}

export class KeyplaneError extends Error {
  /** The `error` code of DESIGN §4 this class stands for (also on each instance as `.code`). */
  static readonly code: string = "error";
  /** HTTP status of the response; 0 when no response came (configuration, network, timeout). */
  readonly status: number;
  /** The decoded error body (`{error, message, ...extra}`), or `{}`. */
  readonly body: JsonObject;

  constructor(message: string, init: ErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status ?? 0;
    this.body = init.body ?? {};
  }

  /** The error code: the one the server sent, else this class's (`KeyplaneError.code`). */
  get code(): string {
    const sent = this.body["error"];
    return typeof sent === "string" && sent !== "" ? sent : (this.constructor as typeof KeyplaneError).code;
  }

  override toString(): string {
    return this.status ? `${this.name}: ${this.code} (${this.status}): ${this.message}` : `${this.name}: ${this.message}`;
  }
}

/** The client is missing an API key or a project id, or an option is out of range. */
export class ConfigurationError extends KeyplaneError {
  static override readonly code: string = "configuration_error";
}

/** The server could not be reached (refused, reset, DNS); `.cause` holds fetch's error. */
export class ConnectionFailedError extends KeyplaneError {
  static override readonly code: string = "connection_failed";
}

/** No complete answer within the client's `timeout` (milliseconds). */
export class RequestTimeoutError extends KeyplaneError {
  static override readonly code: string = "timeout";
}

/** A success status whose body is not the JSON the endpoint documents (e.g. a proxy's HTML page). */
export class InvalidResponseError extends KeyplaneError {
  static override readonly code: string = "invalid_response";
}

/** A 5xx: the server failed (`database_unavailable`, `internal_error`); retry later. */
export class ServerError extends KeyplaneError {
  static override readonly code: string = "internal_error";
}

/**
 * `dataProviders.waitForSync` gave up: the sync was still pending or running. The sync goes on
 * on the server; wait again or look at the provider later.
 */
export class SyncTimeoutError extends KeyplaneError {
  static override readonly code: string = "sync_timeout";
  readonly dataProviderId: number;
  readonly syncStatus: string;

  constructor(dataProviderId: number, syncStatus: string, timeoutMs: number) {
    super(`Data provider ${dataProviderId}'s sync was still ${syncStatus} after ${timeoutMs / 1000} s.`);
    this.dataProviderId = dataProviderId;
    this.syncStatus = syncStatus;
  }
}

// --- 401 ------------------------------------------------------------------------------------
export class AuthenticationError extends KeyplaneError {
  static override readonly code: string = "authentication_error";
}
export class MissingAuthorizationError extends AuthenticationError {
  static override readonly code: string = "missing_authorization";
}
export class MalformedAuthorizationError extends AuthenticationError {
  static override readonly code: string = "malformed_authorization";
}
export class MalformedApiKeyError extends AuthenticationError {
  static override readonly code: string = "malformed_api_key";
}
export class InvalidApiKeyError extends AuthenticationError {
  static override readonly code: string = "invalid_api_key";
}
export class ApiKeyRevokedError extends AuthenticationError {
  static override readonly code: string = "api_key_revoked";
}
export class ApiKeyExpiredError extends AuthenticationError {
  static override readonly code: string = "api_key_expired";
}
export class WrongEnvironmentError extends AuthenticationError {
  static override readonly code: string = "wrong_environment";
}

// --- 403 ------------------------------------------------------------------------------------
/** Any 403. `.required` names the permission the endpoint needs, when the server said. */
export class PermissionError extends KeyplaneError {
  static override readonly code: string = "permission_denied";

  get required(): string | undefined {
    const value = this.body["required"];
    return typeof value === "string" ? value : undefined;
  }
}
export class ProjectMismatchError extends PermissionError {
  static override readonly code: string = "project_mismatch";
}
/** The key lacks the permission in `.required` (e.g. "table:write"). */
export class InsufficientPermissionsError extends PermissionError {
  static override readonly code: string = "insufficient_permissions";
}
export class IpNotAllowedError extends PermissionError {
  static override readonly code: string = "ip_not_allowed";
}

// --- request problems -----------------------------------------------------------------------
export class NotFoundError extends KeyplaneError {
  static override readonly code: string = "not_found";
}
export class ConflictError extends KeyplaneError {
  static override readonly code: string = "conflict";
}
export class PayloadTooLargeError extends KeyplaneError {
  static override readonly code: string = "payload_too_large";
}
export class UnsupportedMediaTypeError extends KeyplaneError {
  static override readonly code: string = "unsupported_media_type";
}

export interface ValidationDetail {
  loc: (string | number)[];
  msg: string;
  type?: string | null;
  /** A batch item's position in the list (batch upserts). */
  index?: number;
  /** The field of that item at fault, dotted (`email`, `values.price`), or null. */
  field?: string | null;
}

/**
 * A 422; `.details` lists the problems (`loc`, `msg`; for a batch upsert also the item's
 * `index` and `field`).
 */
export class ValidationError extends KeyplaneError {
  static override readonly code: string = "validation_error";

  get details(): ValidationDetail[] {
    const value = this.body["details"];
    return Array.isArray(value) ? (value as ValidationDetail[]) : [];
  }
}

/**
 * A 429 the client did not (or could no longer) retry: the retries allowed were used up, or the
 * wait asked for exceeded `maxRetryWait`. `.retryAfter` is the wait asked for, in seconds.
 */
export class RateLimitError extends KeyplaneError {
  static override readonly code: string = "rate_limit_exceeded";

  get retryAfter(): number {
    const value = this.body["retry_after"];
    return typeof value === "number" && Number.isFinite(value) ? value : 0;
  }
}

type ErrorClass = typeof KeyplaneError;

/** Every class by its code, for decoding error bodies. */
export const ERRORS_BY_CODE: Readonly<Record<string, ErrorClass>> = Object.fromEntries(
  [
    AuthenticationError,
    MissingAuthorizationError,
    MalformedAuthorizationError,
    MalformedApiKeyError,
    InvalidApiKeyError,
    ApiKeyRevokedError,
    ApiKeyExpiredError,
    WrongEnvironmentError,
    PermissionError,
    ProjectMismatchError,
    InsufficientPermissionsError,
    IpNotAllowedError,
    NotFoundError,
    ConflictError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
    RateLimitError,
  ].map((cls) => [cls.code, cls]),
);

/** The family of a code this SDK does not know yet (a newer server), by status. */
const BY_STATUS_FALLBACK: Readonly<Record<number, ErrorClass>> = {
  401: AuthenticationError,
  403: PermissionError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: ValidationError,
  429: RateLimitError,
};

/**
 * The typed error for an error response: by its `error` code, else by its status. `text` is
 * the response body; one that is not a JSON object (a proxy's HTML page) still makes a typed
 * error, with the start of the text as its message.
 */
export function errorFromResponse(status: number, statusText: string, text: string): KeyplaneError {
  let body: JsonObject;
  try {
    const parsed: unknown = JSON.parse(text);
    body = isObject(parsed) ? parsed : { message: text.slice(0, 200) };
  } catch {
    body = { message: text.slice(0, 200) || statusText };
  }
  const code = typeof body["error"] === "string" ? body["error"] : "";
  const cls =
    ERRORS_BY_CODE[code] ?? BY_STATUS_FALLBACK[status] ?? (status >= 500 ? ServerError : KeyplaneError);
  const message = typeof body["message"] === "string" && body["message"] ? body["message"] : `HTTP ${status}`;
  return new cls(message, { status, body });
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
