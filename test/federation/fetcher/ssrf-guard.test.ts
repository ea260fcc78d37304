import { describe, expect, it } from "vitest";
import { isBundlegateError } from "../../../src/errors.js";
import { classifyAddress, createSsrfGuard, parseCidr } from "../../../src/federation/fetcher/ssrf-guard.js";

describe("classifyAddress", () => {
  it.each([
    // IPv4
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.0.0.1", "private"],
    ["10.255.255.255", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "shared-cgnat"],
    ["100.127.255.255", "shared-cgnat"],
    ["169.254.1.1", "link-local"],
    ["169.254.169.254", "metadata"],
    ["168.63.129.16", "metadata"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "this-network"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["192.0.0.8", "ietf-protocol"],
    ["192.0.2.1", "documentation"],
    ["198.51.100.7", "documentation"],
    ["203.0.113.9", "documentation"],
    ["198.18.0.1", "benchmarking"],
    ["198.19.255.255", "benchmarking"],
    ["192.88.99.1", "6to4-relay"],
    // IPv6
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf:ffff::1", "link-local"],
    ["fc00::1", "unique-local"],
    ["fd12:3456:789a::1", "unique-local"],
    ["fd00:ec2::254", "metadata"],
    ["ff02::1", "multicast"],
    ["fec0::1", "site-local"],
    ["2001:db8::1", "documentation"],
    ["3fff::1", "documentation"],
    ["100::1", "discard"],
    ["2001::1", "ietf-protocol"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "ietf-protocol"],
    ["64:ff9b:1::1", "nat64-local"],
    ["4000::1", "reserved"],
    ["1::1", "reserved"],
    // Not addresses at all
    ["not-an-ip", "invalid"],
    ["", "invalid"],
    ["1.2.3", "invalid"],
    ["01.2.3.4", "invalid"],
  ])("%s is %s", (address, range) => {
    expect(classifyAddress(address)?.range).toBe(range);
  });

  it.each([
    // IPv4-mapped
    ["::ffff:127.0.0.1", "loopback", "127.0.0.1"],
    ["::ffff:7f00:1", "loopback", "127.0.0.1"],
    ["::ffff:169.254.169.254", "metadata", "169.254.169.254"],
    ["::ffff:10.0.0.1", "private", "10.0.0.1"],
    ["0:0:0:0:0:ffff:c0a8:0101", "private", "192.168.1.1"],
    // IPv4-compatible (deprecated): always refused, named after the IPv4 address when that is special
    ["::127.0.0.1", "loopback", "127.0.0.1"],
    ["::8.8.8.8", "ipv4-compatible", "8.8.8.8"],
    // NAT64
    ["64:ff9b::127.0.0.1", "loopback", "127.0.0.1"],
    ["64:ff9b::a9fe:a9fe", "metadata", "169.254.169.254"],
    ["64:ff9b::10.0.0.1", "private", "10.0.0.1"],
    // 6to4
    ["2002:7f00:1::", "loopback", "127.0.0.1"],
    ["2002:a9fe:a9fe::1", "metadata", "169.254.169.254"],
    ["2002:c0a8:101::1", "private", "192.168.1.1"],
  ])("%s carries %s %s", (address, range, embedded) => {
    expect(classifyAddress(address)).toMatchObject({ range, embedded });
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "11.0.0.1",
    "93.184.216.34",
    "172.32.0.1",
    "172.15.255.255",
    "100.128.0.1",
    "100.63.255.255",
    "169.255.0.1",
    "192.0.3.1",
    "192.169.0.1",
    "198.20.0.1",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001::1",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
  ])("%s is an ordinary global address", (address) => {
    expect(classifyAddress(address)).toBeUndefined();
  });
});

describe("createSsrfGuard", () => {
  it("blocks special-purpose addresses and allows global ones without exceptions", () => {
    const guard = createSsrfGuard();
    expect(guard.check("127.0.0.1")).toMatchObject({ allowed: false, range: "loopback", cidr: "127.0.0.0/8" });
    expect(guard.check("8.8.8.8")).toEqual({ allowed: true, address: "8.8.8.8" });
  });

  it.each([
    [["10.0.0.0/8"], "10.1.2.3", true],
    [["10.0.0.0/8"], "::ffff:10.1.2.3", true],
    [["10.0.0.0/8"], "64:ff9b::10.1.2.3", true],
    [["10.0.0.0/8"], "2002:a01:203::1", true],
    [["10.0.0.0/8"], "192.168.0.1", false],
    [["10.0.0.0/8"], "169.254.169.254", false],
    [["127.0.0.1"], "127.0.0.1", true],
    [["127.0.0.1"], "127.0.0.2", false],
    [["127.0.0.0/8", "::1/128"], "::1", true],
    [["::1/128"], "::ffff:127.0.0.1", false],
    [["fd00::/8"], "fd00:ec2::254", true],
    [["fd00::/8"], "fc00::1", false],
    [["fe80::/10"], "fe80::1%eth0", false],
    [["0.0.0.0/0"], "not-an-ip", false],
  ])("with %j, %s allowed: %s", (allowedCidrs, address, allowed) => {
    const verdict = createSsrfGuard(allowedCidrs).check(address);
    expect(verdict.allowed).toBe(allowed);
    if (allowed) expect(verdict).toMatchObject({ allowedBy: "allowedCidrs" });
  });

  it.each(["10.0.0.0/33", "10.0.0.0/8/9", "foo", "::1/129", "10.0.0.0/-1", "", "10.0.0.0/08x"])(
    "refuses the allowed CIDR %j as ERR_FETCH_CONFIG",
    (cidr) => {
      let code: string | undefined;
      try {
        createSsrfGuard([cidr]);
      } catch (error) {
        code = isBundlegateError(error) ? error.code : "not coded";
      }
      expect(code).toBe("ERR_FETCH_CONFIG");
    },
  );

  it("throws ERR_FETCH_SSRF_BLOCKED with the address and range from assertAllowed", () => {
    let caught: unknown;
    try {
      createSsrfGuard().assertAllowed("::ffff:169.254.169.254", { url: "https://x/" });
    } catch (error) {
      caught = error;
    }
    expect(isBundlegateError(caught) && caught.code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(isBundlegateError(caught) && caught.details).toMatchObject({
      url: "https://x/",
      address: "::ffff:169.254.169.254",
      range: "metadata",
      embedded: "169.254.169.254",
    });
  });
});

describe("parseCidr", () => {
  it.each([
    ["10.0.0.0/8", { address: "10.0.0.0", prefix: 8, family: 4 }],
    ["::1/128", { address: "::1", prefix: 128, family: 6 }],
    ["192.168.1.1", { address: "192.168.1.1", prefix: 32, family: 4 }],
    ["fd00::", { address: "fd00::", prefix: 128, family: 6 }],
    ["0.0.0.0/0", { address: "0.0.0.0", prefix: 0, family: 4 }],
  ])("reads %s", (text, expected) => {
    expect(parseCidr(text)).toEqual(expected);
  });
});
