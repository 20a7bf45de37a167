// Declarations of longhaul's module-worker entry (longhaul-sw.js).

/** What the credentials hook is told about the request attempt it is asked for. */
export interface CredentialsRequest {
  url: string;
  taskId: string;
  session: string;
  /** 1 for the first attempt, then 2, 3, … while attempts fail without progress. */
  attempt: number;
}

/** Headers for one attempt (never stored), or nothing. */
export type CredentialsHeaders = Record<string, string> | [string, string][] | Headers | undefined | null;

export interface InstallOptions {
  /**
   * Called before every attempt of every request; its headers (a fresh
   * `Authorization`, say) replace same-named ones from the page and are never stored.
   */
  credentials?: (request: CredentialsRequest) => CredentialsHeaders | Promise<CredentialsHeaders>;
}

/** Add longhaul's listeners; call while the worker script first evaluates. */
export function install(options?: InstallOptions): Promise<void>;
