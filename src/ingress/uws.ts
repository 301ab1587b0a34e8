/**
 * Loading uWebSockets.js and the small part of its API Floodgate uses.
 *
 * The package's bundled typings describe an older release (no `app.close()`, a mistyped
 * `closeOnBackpressureLimit`), so we declare what we call ourselves and keep the
 * declaration as narrow as our use.
 *
 * The package silently swaps in a slow pure-JS imitation when its native binary cannot
 * load (another Node ABI, a newer glibc requirement, or `UWS_USE_FALLBACK`). The
 * imitation lacks `SSLApp` and `getParts`, which is how we detect it: a fallback engine
 * would advertise 50k events/s and deliver a fraction, so we refuse to start unless the
 * operator opts in with FLOODGATE_ALLOW_UWS_FALLBACK.
 */
import { FloodgateError } from '../errors';

export interface UwsHttpResponse {
  writeStatus(status: string): UwsHttpResponse;
  writeHeader(key: string, value: string): UwsHttpResponse;
  end(body?: string | Uint8Array, closeConnection?: boolean): UwsHttpResponse;
  /**
   * One chunk of a chunked answer (the first call sends the headers with
   * Transfer-Encoding: chunked). The bytes are always taken; false means some wait in
   * uWS's buffer for the client, so write no more until onWritable fires.
   */
  write(chunk: string | Uint8Array): boolean;
  /**
   * Called when the socket can take data again after a write returned false. Return true.
   * While a handler is set, uWS drains its buffer only when the handler or a later write
   * writes something (src/query/event-export.ts relies on this).
   */
  onWritable(handler: (offset: number) => boolean): UwsHttpResponse;
  close(): UwsHttpResponse;
  cork(callback: () => void): UwsHttpResponse;
  onAborted(handler: () => void): UwsHttpResponse;
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsHttpResponse;
  pause(): void;
  resume(): void;
  /** The peer's address as text (IPv4 dotted, or IPv6): for loopback checks and audit lines. */
  getRemoteAddressAsText(): ArrayBuffer;
  /** Our own field, set by src/ingress/cors.ts when the request's Origin is allowed; read by reply(). */
  corsAllowOrigin?: string;
}

export interface UwsHttpRequest {
  getHeader(lowerCaseKey: string): string;
  getMethod(): string;
  getUrl(): string;
  /** The value of the route pattern's `:name` parameter at this index (undefined past the last). */
  getParameter(index: number): string | undefined;
  getQuery(): string | undefined;
  /** Every header in order, repeats included (getHeader sees only the first). */
  forEach(callback: (lowerCaseKey: string, value: string) => void): void;
  /** A `:name` segment of a parameter route, by position. */
  getParameter(index: number): string | undefined;
}

export type UwsListenSocket = object;

/** The response an upgrade handler gets: it may turn the request into a WebSocket. */
export interface UwsUpgradeResponse extends UwsHttpResponse {
  upgrade<UserData>(userData: UserData, secWebSocketKey: string, secWebSocketProtocol: string, secWebSocketExtensions: string, context: unknown): void;
}

/** One WebSocket, valid from `open` to `close`; every call after `close` throws. */
export interface UwsWebSocket<UserData> {
  /** 1: sent; 0: sent, buffered behind backpressure; 2: dropped (past maxBackpressure). */
  send(message: string | Uint8Array, isBinary?: boolean): number;
  end(code?: number, shortMessage?: string): void;
  getBufferedAmount(): number;
  cork(callback: () => void): void;
  getUserData(): UserData;
}

/** The part of uWS's WebSocketBehavior we set (the bundled typings call closeOnBackpressureLimit a number). */
export interface UwsWebSocketBehavior<UserData> {
  maxPayloadLength: number;
  idleTimeout: number;
  maxBackpressure: number;
  closeOnBackpressureLimit: boolean;
  sendPingsAutomatically: boolean;
  upgrade(res: UwsUpgradeResponse, req: UwsHttpRequest, context: unknown): void;
  open?(ws: UwsWebSocket<UserData>): void;
  message(ws: UwsWebSocket<UserData>, message: ArrayBuffer, isBinary: boolean): void;
  close(ws: UwsWebSocket<UserData>, code: number, message: ArrayBuffer): void;
}
type Handler = (res: UwsHttpResponse, req: UwsHttpRequest) => void;

export interface UwsApp {
  get(pattern: string, handler: Handler): UwsApp;
  post(pattern: string, handler: Handler): UwsApp;
  del(pattern: string, handler: Handler): UwsApp;
  patch(pattern: string, handler: Handler): UwsApp;
  options(pattern: string, handler: Handler): UwsApp;
  any(pattern: string, handler: Handler): UwsApp;
  listen(host: string, port: number, callback: (socket: UwsListenSocket | false) => void): UwsApp;
  /** Exists at run time in this build though the bundled typings lack it: closes every socket. */
  close(): void;
}

/** The app uWS makes: routes, and WebSocket routes (registered apart, through the guard: src/ingress/server.ts). */
export interface UwsRootApp extends UwsApp {
  ws<UserData>(pattern: string, behavior: UwsWebSocketBehavior<UserData>): UwsApp;
}

export interface UwsModule {
  App(options?: object): UwsRootApp;
  us_listen_socket_close(socket: UwsListenSocket): void;
  us_socket_local_port(socket: UwsListenSocket): number;
  SSLApp?: unknown;
  getParts?: unknown;
}

export interface LoadedUws {
  readonly uws: UwsModule;
  /** True when the package fell back to its pure-JS imitation. */
  readonly isFallback: boolean;
}

export function loadUws(options: { allowFallback: boolean }): LoadedUws {
  // The package prints its own warning on fallback; nothing to silence here.
  const uws = require('@trufflesuite/uws-js-unofficial') as UwsModule;
  const isFallback = typeof uws.SSLApp !== 'function' || typeof uws.getParts !== 'function';
  if (isFallback && !options.allowFallback) {
    throw new FloodgateError(
      'ERR_INTERNAL',
      `uWebSockets.js could not load its native binary for Node ${process.version} ` +
        `(ABI ${process.versions.modules}, ${process.platform}-${process.arch}) and fell back to a slow ` +
        'pure-JS imitation. Floodgate refuses to start on it: run Node 20 on glibc-based Linux, or set ' +
        'FLOODGATE_ALLOW_UWS_FALLBACK=true to accept degraded performance.',
    );
  }
  return { uws, isFallback };
}
