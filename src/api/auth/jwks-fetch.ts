/**
 * The fetch jose's remote JWKS set uses for the admin API's `jwksUrl`: node:http(s) rather than the global
 * fetch, so an identity provider behind a private CA can be trusted through `ca` (the global fetch cannot be
 * given one), and so the body is capped while it streams in. Redirects are not followed (jose asks for
 * `redirect: "manual"` and accepts only a 200).
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { FetchImplementation } from "jose";

export interface JwksFetchOptions {
  /** PEM CA certificates to trust instead of the system roots. */
  readonly ca?: string | Buffer;
  /** Largest body accepted; a bigger JWKS fails the fetch. */
  readonly maxBytes: number;
}

/** A body over `maxBytes`: a failed fetch, like a network error. */
export class JwksTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`the JWKS response is larger than ${maxBytes} bytes`);
    this.name = "JwksTooLargeError";
  }
}

export function createJwksFetch(options: JwksFetchOptions): FetchImplementation {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const headers: Record<string, string> = {};
      init.headers.forEach((value, name) => {
        headers[name] = value;
      });
      const requestOptions = { method: "GET", headers, signal: init.signal };
      const onResponse = (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) {
            response.destroy();
            reject(new JwksTooLargeError(options.maxBytes));
            return;
          }
          chunks.push(chunk);
        });
        response.on("error", reject);
        response.on("end", () => {
          const status = response.statusCode ?? 0;
          const contentType = response.headers["content-type"];
          try {
            // Only a 200 is read by jose; other statuses go without a body, which some (204, 304) must.
            resolve(
              new Response(status === 200 ? Buffer.concat(chunks) : null, {
                status,
                headers: contentType === undefined ? {} : { "content-type": contentType },
              }),
            );
          } catch (error) {
            // A status Response refuses (outside 200..599).
            reject(error);
          }
        });
      };
      const req =
        target.protocol === "https:"
          ? httpsRequest(
              target,
              { ...requestOptions, ...(options.ca === undefined ? {} : { ca: options.ca }) },
              onResponse,
            )
          : httpRequest(target, requestOptions, onResponse);
      // jose turns a TimeoutError (what AbortSignal.timeout aborts with) into JWKSTimeout.
      req.on("error", (error) => reject(init.signal.aborted ? init.signal.reason : error));
      req.end();
    });
}
