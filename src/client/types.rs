//! The TypeScript declarations of the page's API (wasm-bindgen appends them to `longhaul.d.ts`).

use super::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A task's state. */
export type TaskState = 'pending' | 'running' | 'paused' | 'waiting' | 'completed' | 'failed' | 'canceled';
/** Stable error codes (see the README's table). */
export type ErrorCode = 'invalid-input' | 'network' | 'http-status' | 'timeout' | 'not-resumable'
  | 'quota' | 'storage' | 'canceled' | 'too-large' | 'integrity' | 'over-budget' | 'not-found'
  | 'invalid-state' | 'no-worker' | 'internal';
/** Why a task failed. */
export interface TaskError { code: ErrorCode; message: string; status?: number; }
/** Fields every task's snapshot has. */
interface TaskSnapshotBase {
  id: string;
  session: string;
  url: string;
  description: string;
  state: TaskState;
  bytesExpected: number | null;
  error: TaskError | null;
  createdAt: number;
  updatedAt: number;
  retryAt: number | null;
  /** Why a `waiting` task waits. */
  waitReason: 'offline' | 'retry-at' | 'earliest-begin' | 'connection-limit' | 'discretionary'
    | 'expensive-network' | 'constrained-network' | null;
  /** 0 to 1. */
  priority: number;
  /** Not started before this, ms since the epoch, or null. */
  earliestBegin: number | null;
}
/** A download: `bytesReceived` bytes are stored. */
export interface DownloadSnapshot extends TaskSnapshotBase {
  kind: 'download';
  bytesReceived: number;
}
/** An upload: the server acknowledged `bytesSent` bytes. */
export interface UploadSnapshot extends TaskSnapshotBase {
  kind: 'upload';
  bytesSent: number;
}
/** A plain-object view of a task; `kind` tells which. */
export type TaskSnapshot = DownloadSnapshot | UploadSnapshot;
/** Options of `BackgroundSession.open`. */
export interface OpenOptions {
  /** Refuse with `not-found` instead of creating a session that is not stored (its storage vanished). */
  mustExist?: boolean;
}
/** Opaque, versioned, JSON-serializable resume data of a canceled download. */
export interface ResumeData { readonly longhaulResumeData: number; readonly [key: string]: unknown; }
/** Options of `session.cancel`. */
export interface CancelOptions {
  /** Keep a download's bytes and resolve with resume data for `download(resumeData)`. */
  produceResumeData?: boolean;
}
/** Options of `session.upload`. */
export interface UploadOptions {
  /** `'tus'` (default: resumable, chunked), or one `'put'`/`'post'` restarted from zero on failure. */
  protocol?: 'tus' | 'put' | 'post';
  headers?: Record<string, string> | [string, string][] | Headers;
  description?: string;
  /** tus `Upload-Metadata`; a File's name and type are sent as `filename` and `filetype` unless given. */
  metadata?: Record<string, string>;
  /** Bytes per tus PATCH request (64 KiB to 256 MiB; default 8 MiB). */
  chunkSize?: number;
  /** `Content-Type` of a put/post body (default: the Blob's type, else application/octet-stream). */
  contentType?: string;
  /** As for downloads: header names kept in memory only, besides `Authorization`. */
  sensitiveHeaders?: string[];
  /** Store credential headers with the task (default false). */
  persistCredentials?: boolean;
  /** As for downloads. */
  priority?: number;
  /** As for downloads. */
  earliestBegin?: Date | number;
}
/** Options of `session.download`. */
export interface DownloadOptions {
  headers?: Record<string, string> | [string, string][] | Headers;
  description?: string;
  /** Most bytes the download may store; a larger resource fails with `too-large`. */
  maxBytes?: number;
  /**
   * Subresource Integrity metadata (`'sha256-<base64>'`, sha384, sha512; several
   * separated by spaces). The whole file is checked before the task completes; a
   * mismatch fails it with `integrity` and frees its bytes.
   */
  integrity?: string;
  /**
   * Header names to treat as credentials besides `Authorization`: kept in the
   * worker's memory only, never stored, unless `persistCredentials` is true.
   */
  sensitiveHeaders?: string[];
  /** Store credential headers with the task, so they survive a restart (default false). */
  persistCredentials?: boolean;
  /** Order among the session's tasks for one host, 0 to 1 (default 0.5); higher first. */
  priority?: number;
  /** Not started before this time; survives restarts; runs at the first wake after it. */
  earliestBegin?: Date | number;
  /** Bytes the app expects; refused up front (`over-budget`, `quota`) if they cannot fit. */
  expectedBytes?: number;
}
/** How failed attempts are retried (all durations in ms). */
export interface RetryPolicy {
  /** Failed attempts in a row, without progress, before the task fails (default 8). */
  maxAttempts?: number;
  /** First delay of the exponential backoff (default 1000). */
  baseDelay?: number;
  /** Largest delay, and the clamp for a server's Retry-After (default 60000). */
  maxDelay?: number;
  /** Explicit delays instead of the exponential backoff; the last one repeats. */
  delays?: number[];
  /** No retry once the task is older than this. */
  maxAge?: number;
  /** Random spread of each delay, as a fraction (default 0.2). */
  jitter?: number;
}
/** Session configuration, stored with the session. Unknown keys are refused. */
export interface SessionConfig {
  retry?: RetryPolicy;
  /** A request that receives nothing (no head, no byte) for this long is aborted and retried, ms (default 60000). */
  requestTimeout?: number;
  /**
   * Most bytes the session's tasks may hold together; a download that would cross
   * it fails with `over-budget` before storing those bytes. Default: no budget.
   */
  byteBudget?: number;
  /** Requests of the session in flight to one host at once (default 6, 1 to 64); more wait with `connection-limit`. */
  maxConnectionsPerHost?: number;
  /** A task not finished this long after it was created fails with `timeout`, ms (default 7 days); paused tasks are left alone. */
  resourceTimeout?: number;
  /** Headers sent with every request of the session; a task's own win. `Authorization` is refused here (it would be stored). */
  headers?: Record<string, string> | [string, string][] | Headers;
  /** Run only when pages report a good network (not cellular, no Save-Data, not 2G); best effort (default false). */
  discretionary?: boolean;
  /** May use cellular networks, as pages report them (default true). */
  allowsExpensiveNetworkAccess?: boolean;
  /** May use the network while the user asks to save data (default true). */
  allowsConstrainedNetworkAccess?: boolean;
  /**
   * Show a notification when a task ends while no page is open (default false). The
   * app must have the permission (`Notification.requestPermission()`); clicking the
   * notification focuses or opens the app.
   */
  notifications?: boolean;
}
/** The events a session dispatches; `detail` is the task's snapshot. */
export interface SessionEventMap {
  progress: CustomEvent<TaskSnapshot>;
  statechange: CustomEvent<TaskSnapshot>;
  complete: CustomEvent<TaskSnapshot>;
  /** Every task of the session has ended (delivered once; to a page that opens later if none was open). */
  finish: CustomEvent<{ session: string }>;
}
"#;
