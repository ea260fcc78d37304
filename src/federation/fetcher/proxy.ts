/**
 * Which proxy, if any, one hop of a fetch goes through.
 *
 * - A relationship's own `proxy` wins: "direct" means no proxy whatever the environment says; a URL means
 *   that proxy, NO_PROXY notwithstanding (the operator named it for this partner).
 * - Otherwise `httpsProxy` (HTTPS_PROXY, read by the config loader) unless the host matches `noProxy`.
 *
 * NO_PROXY follows the common curl/Go reading, since there is no standard: entries separated by commas or
 * spaces, case-insensitive; "*" matches everything; "example.com", ".example.com" and "*.example.com" all
 * match example.com and its subdomains; an entry may carry a port (":8443", "[::1]:8443") and then matches
 * that port only; an IP literal matches itself and a CIDR matches IP-literal hosts inside it (a name is
 * never resolved to test it against a CIDR: that would be a DNS lookup the proxy was supposed to make).
 */
import { BlockList, isIP } from "node:net";
import { FetchError } from "./errors.js";
import { parseCidr } from "./ssrf-guard.js";
import { hostOf, portOf } from "./url.js";

export type ProxyChoice =
  | { readonly kind: "direct"; readonly reason: "request" | "no-proxy-configured" | "no_proxy" }
  | { readonly kind: "proxy"; readonly url: URL; readonly source: "request" | "environment" };

export interface ProxySettings {
  /** The relationship's setting: a proxy URL or "direct". */
  readonly requestProxy?: string | undefined;
  readonly httpsProxy?: string | undefined;
  readonly noProxy?: string | undefined;
}

export function chooseProxy(target: URL, settings: ProxySettings): ProxyChoice {
  const explicit = settings.requestProxy?.trim();
  if (explicit !== undefined && explicit !== "") {
    if (explicit.toLowerCase() === "direct") return { kind: "direct", reason: "request" };
    return { kind: "proxy", url: parseProxyUrl(explicit, "request"), source: "request" };
  }
  const fromEnvironment = settings.httpsProxy?.trim();
  if (fromEnvironment === undefined || fromEnvironment === "") return { kind: "direct", reason: "no-proxy-configured" };
  if (settings.noProxy !== undefined && matchesNoProxy(target, settings.noProxy)) {
    return { kind: "direct", reason: "no_proxy" };
  }
  return { kind: "proxy", url: parseProxyUrl(fromEnvironment, "environment"), source: "environment" };
}

export function parseProxyUrl(text: string, source: "request" | "environment"): URL {
  let url: URL;
  try {
    // HTTPS_PROXY is commonly written without a scheme ("proxy.corp:3128"); curl and Go read it as http.
    url = new URL(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(text) ? text : `http://${text}`);
  } catch (error) {
    throw new FetchError("ERR_FETCH_CONFIG", `${source} proxy setting is not a URL`, {
      cause: error,
      details: { proxySource: source },
    });
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
    throw new FetchError(
      "ERR_FETCH_CONFIG",
      `${source} proxy ${redactProxyUrl(url)} must be an http:// or https:// URL`,
      {
        details: { proxySource: source, proxy: redactProxyUrl(url) },
      },
    );
  }
  return url;
}

/** The proxy URL fit for logs and error details: credentials removed. */
export function redactProxyUrl(url: URL): string {
  const credentials = url.username !== "" || url.password !== "" ? "redacted@" : "";
  return `${url.protocol}//${credentials}${url.host}`;
}

export function matchesNoProxy(target: URL, noProxy: string): boolean {
  const host = hostOf(target).toLowerCase().replace(/\.$/, "");
  const port = portOf(target);
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return true;
    const { name, port: entryPort } = splitHostPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    if (name === "") continue;
    if (name.includes("/")) {
      if (cidrContains(name, host)) return true;
      continue;
    }
    if (isIP(name) !== 0) {
      if (isIP(host) !== 0 && sameAddress(name, host)) return true;
      continue;
    }
    const domain = name.replace(/^\*?\./, "").replace(/\.$/, "");
    if (domain === "") continue;
    if (host === domain || host.endsWith(`.${domain}`)) return true;
  }
  return false;
}

function splitHostPort(entry: string): { name: string; port: number | undefined } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1] ?? "", port: toPort(bracketed[2]) };
  // More than one colon without brackets is a bare IPv6 address (or CIDR), never host:port.
  if ((entry.match(/:/g)?.length ?? 0) === 1) {
    const [name = "", port] = entry.split(":");
    return { name, port: toPort(port) };
  }
  return { name: entry, port: undefined };
}

function toPort(text: string | undefined): number | undefined {
  return text === undefined || !/^\d+$/.test(text) ? undefined : Number(text);
}

function cidrContains(cidrText: string, host: string): boolean {
  const family = isIP(host);
  const cidr = parseCidr(cidrText);
  if (!cidr || family === 0) return false;
  const list = new BlockList();
  list.addSubnet(cidr.address, cidr.prefix, cidr.family === 4 ? "ipv4" : "ipv6");
  return list.check(host, family === 4 ? "ipv4" : "ipv6");
}

function sameAddress(a: string, b: string): boolean {
  const family = isIP(a);
  if (family !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(a, family === 4 ? "ipv4" : "ipv6");
  return list.check(b, family === 4 ? "ipv4" : "ipv6");
}
