import { describe, expect, it } from "vitest";
import { isBundlegateError } from "../../../src/errors.js";
import { chooseProxy, matchesNoProxy, parseProxyUrl, redactProxyUrl } from "../../../src/federation/fetcher/proxy.js";
import { hostOf, parseEndpointUrl, portOf, resolveRedirect } from "../../../src/federation/fetcher/url.js";

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return isBundlegateError(error) ? error.code : "not coded";
  }
  return undefined;
}

describe("endpoint URLs", () => {
  it.each([
    ["https://example.org/bundle", "example.org", 443],
    ["https://example.org:8443/x?td=a", "example.org", 8443],
    ["https://[2001:db8::1]/bundle", "2001:db8::1", 443],
    ["https://EXAMPLE.org/bundle", "example.org", 443],
  ])("accepts %s", (input, host, port) => {
    const url = parseEndpointUrl(input);
    expect(hostOf(url)).toBe(host);
    expect(portOf(url)).toBe(port);
  });

  it.each([
    ["http://example.org/bundle"],
    ["ftp://example.org/bundle"],
    ["https://user@example.org/bundle"],
    ["https://:pw@example.org/bundle"],
    ["https://@example.org/bundle"],
    ["https://example.org/bundle#keys"],
    ["https://example.org/bundle#"],
    ["example.org/bundle"],
    ["https://"],
  ])("refuses %s as ERR_FETCH_URL_INVALID", (input) => {
    expect(codeOf(() => parseEndpointUrl(input))).toBe("ERR_FETCH_URL_INVALID");
  });

  const base = new URL("https://a.example/dir/bundle");

  it.each([
    ["/other", "https://a.example/other"],
    ["next", "https://a.example/dir/next"],
    ["//b.example/x", "https://b.example/x"],
    ["https://c.example:8443/y?z=1", "https://c.example:8443/y?z=1"],
  ])("resolves the redirect %s", (location, expected) => {
    expect(resolveRedirect(location, base).href).toBe(expected);
  });

  it.each([
    ["http://b.example/x", "ERR_FETCH_REDIRECT_INSECURE"],
    ["//user@b.example/x", "ERR_FETCH_URL_INVALID"],
    ["https:\\\\user@b.example/x", "ERR_FETCH_URL_INVALID"],
    ["https://@b.example/x", "ERR_FETCH_URL_INVALID"],
    ["/x#frag", "ERR_FETCH_URL_INVALID"],
    ["data:text/plain,hi", "ERR_FETCH_URL_INVALID"],
    ["https://[::1", "ERR_FETCH_URL_INVALID"],
  ])("refuses the redirect %s with %s", (location, code) => {
    expect(codeOf(() => resolveRedirect(location, base))).toBe(code);
  });
});

describe("proxy selection", () => {
  const target = new URL("https://bundle.partner.example/bundle");

  it("goes direct without any proxy setting", () => {
    expect(chooseProxy(target, {})).toEqual({ kind: "direct", reason: "no-proxy-configured" });
  });

  it("uses HTTPS_PROXY unless NO_PROXY matches", () => {
    const choice = chooseProxy(target, { httpsProxy: "http://proxy.corp:3128" });
    expect(choice.kind === "proxy" && choice.url.href).toBe("http://proxy.corp:3128/");
    expect(chooseProxy(target, { httpsProxy: "http://proxy.corp:3128", noProxy: "partner.example" })).toEqual({
      kind: "direct",
      reason: "no_proxy",
    });
  });

  it("lets the relationship's setting win", () => {
    expect(chooseProxy(target, { requestProxy: "direct", httpsProxy: "http://proxy.corp:3128" }).kind).toBe("direct");
    const own = chooseProxy(target, { requestProxy: "http://own.proxy:8080", noProxy: "*" });
    expect(own).toMatchObject({ kind: "proxy", source: "request" });
  });

  it("reads a proxy without scheme as http and refuses other schemes", () => {
    expect(parseProxyUrl("proxy.corp:3128", "environment").href).toBe("http://proxy.corp:3128/");
    expect(codeOf(() => parseProxyUrl("socks5://proxy.corp:1080", "request"))).toBe("ERR_FETCH_CONFIG");
    expect(codeOf(() => chooseProxy(target, { requestProxy: "http://" }))).toBe("ERR_FETCH_CONFIG");
  });

  it("never shows proxy credentials", () => {
    expect(redactProxyUrl(new URL("http://user:secret@proxy.corp:3128"))).toBe("http://redacted@proxy.corp:3128");
    expect(redactProxyUrl(new URL("https://proxy.corp"))).toBe("https://proxy.corp");
  });

  it.each([
    ["https://example.com/", "example.com", true],
    ["https://a.b.example.com/", "example.com", true],
    ["https://badexample.com/", "example.com", false],
    ["https://a.example.com/", ".example.com", true],
    ["https://example.com/", ".example.com", true],
    ["https://a.example.com/", "*.example.com", true],
    ["https://EXAMPLE.com./", "example.COM", true],
    ["https://example.com:8443/", "example.com:8443", true],
    ["https://example.com/", "example.com:8443", false],
    ["https://example.com/", "example.com:443", true],
    ["https://10.1.2.3/", "10.0.0.0/8", true],
    ["https://ten.example/", "10.0.0.0/8", false],
    ["https://10.1.2.3/", "10.1.2.3", true],
    ["https://[::1]/", "::1", true],
    ["https://[::1]:8443/", "[::1]:8443", true],
    ["https://[::1]/", "[::1]:8443", false],
    ["https://[fd00::5]/", "fd00::/8", true],
    ["https://anything.example/", "*", true],
    ["https://z.example/", "a.example, b.example z.example", true],
    ["https://z.example/", "", false],
    ["https://z.example/", " , ", false],
  ])("NO_PROXY: %s against %j is %s", (url, noProxy, expected) => {
    expect(matchesNoProxy(new URL(url), noProxy)).toBe(expected);
  });
});
