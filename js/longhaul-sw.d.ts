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

/** Where the worker's wasm comes from (see `InstallOptions.wasm`). */
export type WasmSource =
  | string
  | URL
  | Request
  | Response
  | WebAssembly.Module
  | BufferSource
  | PromiseLike<Response | WebAssembly.Module | BufferSource>;

export interface InstallOptions {
  /**
   * The worker's wasm, for apps that keep it themselves (a bundler's hashed asset, a
   * Workbox precache). A URL (the default: the package's `longhaul-worker_bg.wasm`) is
   * fetched at `install`, checked against the digest this build expects and kept in
   * Cache Storage, so the worker starts without the network. A function is called at
   * every start-up attempt, so that one which failed can be tried again.
   */
  wasm?: WasmSource | (() => WasmSource);
  /**
   * Called before every attempt of every request; its headers (a fresh
   * `Authorization`, say) replace same-named ones from the page and are never stored.
   */
  credentials?: (request: CredentialsRequest) => CredentialsHeaders | Promise<CredentialsHeaders>;
}

/** Add longhaul's listeners; call while the worker script first evaluates. */
export function install(options?: InstallOptions): Promise<void>;
