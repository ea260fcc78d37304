/**
 * What counts as a bundle endpoint URL (SPIFFE_Federation.md 5.2.1.1 and 5.2.2.1, DESIGN.md section 6):
 * https, no userinfo in the authority, and (bundlegate's own rule) no fragment, since a fragment never
 * reaches the server and so can only be a mistake or a disguise. Redirect targets are held to the same
 * rules; a plain http target gets its own code because it is the one mistake partners actually make.
 */
import { FetchError } from "./errors.js";

/** The WHATWG parser quietly drops an empty userinfo ("https://@host/"), so the raw text is looked at too. */
const RAW_AUTHORITY = /^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?[\\/]{2}([^\\/?#]*)/;

export function parseEndpointUrl(input: string): URL {
  return checkEndpointUrl(input, undefined);
}

/** Resolves a Location header against the URL that answered with it, then checks it like a configured URL. */
export function resolveRedirect(location: string, base: URL): URL {
  return checkEndpointUrl(location, base);
}

function checkEndpointUrl(input: string, base: URL | undefined): URL {
  const context = base === undefined ? { url: input } : { url: base.href, location: input };
  const invalid = (reason: string) =>
    new FetchError(
      "ERR_FETCH_URL_INVALID",
      `${base === undefined ? "endpoint URL" : "redirect target"} ${JSON.stringify(input)} ${reason}`,
      { details: { ...context, reason } },
    );
  let url: URL;
  try {
    url = base === undefined ? new URL(input) : new URL(input, base);
  } catch (error) {
    throw new FetchError("ERR_FETCH_URL_INVALID", `${JSON.stringify(input)} is not a URL`, {
      cause: error,
      details: { ...context, reason: "not a URL" },
    });
  }
  if (url.protocol === "http:" && base !== undefined) {
    throw new FetchError(
      "ERR_FETCH_REDIRECT_INSECURE",
      `redirect from ${base.href} to plain http ${url.href} refused`,
      { details: { ...context, target: url.href } },
    );
  }
  if (url.protocol !== "https:") throw invalid(`has scheme ${url.protocol.replace(/:$/, "")}, not https`);
  if (url.username !== "" || url.password !== "" || RAW_AUTHORITY.exec(input.trim())?.[1]?.includes("@")) {
    throw invalid("has userinfo");
  }
  if (url.hash !== "" || input.includes("#")) throw invalid("has a fragment");
  if (url.hostname === "") throw invalid("has no host");
  return url;
}

/** The host as sockets want it: IPv6 literals without their brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "");
}

export function portOf(url: URL): number {
  return url.port === "" ? 443 : Number(url.port);
}
