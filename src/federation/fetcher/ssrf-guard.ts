/**
 * The SSRF guard: which addresses a partner bundle endpoint may not live at.
 *
 * A relationship's URL comes from an operator or through the onboarding API, and redirects come from the
 * partner; either could point the gateway at its own network (Redis, the internal API, a cloud metadata
 * service). So every address the fetcher is about to connect to is classified here, and anything that is not
 * global unicast is refused unless the relationship allows a CIDR that contains it.
 *
 * Refused (first match names the range in the error):
 * - IPv4: 0.0.0.0/8 (0.0.0.0 itself as unspecified), 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
 *   192.0.0/24, 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4,
 *   240/4, 255.255.255.255; the metadata services 169.254.169.254 and 168.63.129.16 (Azure's WireServer is a
 *   public address, so no range would catch it).
 * - IPv6: ::, ::1, fd00:ec2::254 (AWS metadata), 64:ff9b:1::/48, 100::/64, 2001::/23, 2001:db8::/32,
 *   3fff::/20, fc00::/7, fe80::/10, fec0::/10, ff00::/8, and everything outside 2000::/3 (not allocated
 *   for unicast).
 * - IPv6 forms that carry an IPv4 address are judged by that address: IPv4-mapped ::ffff:0:0/96, NAT64
 *   64:ff9b::/96 and 6to4 2002::/16. IPv4-compatible ::/96 is deprecated (RFC 4291) and always refused.
 *   Teredo (2001::/32) is refused with the rest of 2001::/23.
 *
 * An address is allowed when it, or the IPv4 address it carries, lies in one of `allowedCidrs`.
 */
import { BlockList, isIP } from "node:net";
import { FetchError } from "./errors.js";

export type SpecialRange =
  | "unspecified"
  | "this-network"
  | "loopback"
  | "private"
  | "shared-cgnat"
  | "link-local"
  | "metadata"
  | "ietf-protocol"
  | "documentation"
  | "benchmarking"
  | "6to4-relay"
  | "multicast"
  | "reserved"
  | "broadcast"
  | "unique-local"
  | "site-local"
  | "discard"
  | "nat64-local"
  | "ipv4-compatible"
  | "invalid";

export interface Classification {
  readonly range: SpecialRange;
  readonly cidr: string;
  /** The IPv4 address an IPv6 form carries, when that is what got judged. */
  readonly embedded?: string;
}

export type SsrfVerdict =
  | { readonly allowed: true; readonly address: string; readonly allowedBy?: string }
  | ({ readonly allowed: false; readonly address: string } & Classification);

export interface SsrfGuard {
  check(address: string): SsrfVerdict;
  /** Throws ERR_FETCH_SSRF_BLOCKED unless `address` is allowed. */
  assertAllowed(address: string, context: Readonly<Record<string, unknown>>): void;
}

interface Range {
  readonly bytes: Uint8Array;
  readonly prefix: number;
  readonly cidr: string;
  readonly range: SpecialRange;
}

function range(cidr: string, name: SpecialRange): Range {
  const [address = "", prefix = ""] = cidr.split("/");
  const bytes = parseAddress(address);
  if (!bytes) throw new Error(`bad built-in range ${cidr}`);
  return { bytes, prefix: Number(prefix), cidr, range: name };
}

// Order matters: the most specific entry is listed first so the error names it.
const IPV4_RANGES: readonly Range[] = [
  range("169.254.169.254/32", "metadata"),
  range("168.63.129.16/32", "metadata"),
  range("255.255.255.255/32", "broadcast"),
  range("0.0.0.0/32", "unspecified"),
  range("0.0.0.0/8", "this-network"),
  range("10.0.0.0/8", "private"),
  range("100.64.0.0/10", "shared-cgnat"),
  range("127.0.0.0/8", "loopback"),
  range("169.254.0.0/16", "link-local"),
  range("172.16.0.0/12", "private"),
  range("192.0.0.0/24", "ietf-protocol"),
  range("192.0.2.0/24", "documentation"),
  range("192.88.99.0/24", "6to4-relay"),
  range("192.168.0.0/16", "private"),
  range("198.18.0.0/15", "benchmarking"),
  range("198.51.100.0/24", "documentation"),
  range("203.0.113.0/24", "documentation"),
  range("224.0.0.0/4", "multicast"),
  range("240.0.0.0/4", "reserved"),
];

const IPV6_RANGES: readonly Range[] = [
  range("::/128", "unspecified"),
  range("::1/128", "loopback"),
  range("fd00:ec2::254/128", "metadata"),
  range("64:ff9b:1::/48", "nat64-local"),
  range("100::/64", "discard"),
  range("2001:db8::/32", "documentation"),
  range("2001::/23", "ietf-protocol"),
  range("3fff::/20", "documentation"),
  range("fc00::/7", "unique-local"),
  range("fe80::/10", "link-local"),
  range("fec0::/10", "site-local"),
  range("ff00::/8", "multicast"),
];

const GLOBAL_UNICAST = range("2000::/3", "reserved");
const MAPPED = range("::ffff:0:0/96", "reserved");
const NAT64 = range("64:ff9b::/96", "reserved");
const SIX_TO_FOUR = range("2002::/16", "reserved");
const COMPATIBLE = range("::/96", "ipv4-compatible");

/**
 * Where an address belongs when it is special-purpose; undefined for an ordinary global unicast address.
 * Accepts IPv4, IPv6 (with or without a zone) and bracketed IPv6 as URLs spell it.
 */
export function classifyAddress(address: string): Classification | undefined {
  const { bytes, zoned } = parseWithZone(address);
  if (!bytes) return { range: "invalid", cidr: "" };
  if (bytes.length === 4) return classifyV4(bytes);
  // A zone only makes sense for link-local and other scoped addresses; never for a partner's endpoint.
  if (zoned) return { range: "link-local", cidr: "fe80::/10" };
  const embedded = embeddedIpv4(bytes);
  if (embedded) {
    const inner = classifyV4(embedded.v4);
    const text = formatV4(embedded.v4);
    if (inner) return { ...inner, embedded: text };
    if (embedded.kind === "compatible") return { range: "ipv4-compatible", cidr: COMPATIBLE.cidr, embedded: text };
    return undefined;
  }
  for (const entry of IPV6_RANGES) {
    if (inRange(bytes, entry)) return { range: entry.range, cidr: entry.cidr };
  }
  if (!inRange(bytes, GLOBAL_UNICAST)) return { range: "reserved", cidr: "outside 2000::/3" };
  return undefined;
}

function classifyV4(bytes: Uint8Array): Classification | undefined {
  for (const entry of IPV4_RANGES) {
    if (inRange(bytes, entry)) return { range: entry.range, cidr: entry.cidr };
  }
  return undefined;
}

/** The IPv4 address an IPv6 address carries in one of the standard embeddings, if any. */
function embeddedIpv4(
  bytes: Uint8Array,
): { kind: "mapped" | "nat64" | "6to4" | "compatible"; v4: Uint8Array } | undefined {
  if (inRange(bytes, MAPPED)) return { kind: "mapped", v4: bytes.subarray(12, 16) };
  if (inRange(bytes, NAT64)) return { kind: "nat64", v4: bytes.subarray(12, 16) };
  if (inRange(bytes, SIX_TO_FOUR)) return { kind: "6to4", v4: bytes.subarray(2, 6) };
  // :: and ::1 are in ::/96 too but have their own names.
  if (inRange(bytes, COMPATIBLE) && !inRange(bytes, IPV6_RANGES[0]!) && !inRange(bytes, IPV6_RANGES[1]!)) {
    return { kind: "compatible", v4: bytes.subarray(12, 16) };
  }
  return undefined;
}

function inRange(bytes: Uint8Array, entry: Range): boolean {
  if (bytes.length !== entry.bytes.length) return false;
  let bits = entry.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((entry.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

function parseWithZone(address: string): { bytes: Uint8Array | undefined; zoned: boolean } {
  let text = address.trim();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const zone = text.indexOf("%");
  const zoned = zone >= 0;
  if (zoned) text = text.slice(0, zone);
  return { bytes: parseAddress(text), zoned };
}

/** 4 or 16 bytes; undefined for anything that is not an IP literal (host names included). */
export function parseAddress(text: string): Uint8Array | undefined {
  const family = isIP(text);
  if (family === 4) return parseV4(text);
  if (family === 6) return parseV6(text);
  return undefined;
}

function parseV4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    const value = Number(part);
    if (!/^\d{1,3}$/.test(part) || value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

function parseV6(text: string): Uint8Array | undefined {
  let body = text;
  const lastColon = body.lastIndexOf(":");
  const tail = body.slice(lastColon + 1);
  if (tail.includes(".")) {
    // A trailing dotted quad stands for the last two groups.
    const v4 = parseV4(tail);
    if (!v4) return undefined;
    const high = ((v4[0]! << 8) | v4[1]!).toString(16);
    const low = ((v4[2]! << 8) | v4[3]!).toString(16);
    body = `${body.slice(0, lastColon + 1)}${high}:${low}`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const toGroups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = toGroups(halves[0] ?? "");
  const right = halves.length === 2 ? toGroups(halves[1] ?? "") : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...right];
  const bytes = new Uint8Array(16);
  for (const [i, group] of groups.entries()) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    const value = Number.parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  }
  return bytes;
}

function formatV4(bytes: Uint8Array): string {
  return [...bytes].join(".");
}

/** Parses a CIDR ("10.0.0.0/8", "::1/128") or a single address; undefined when it is neither. */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const [address = "", prefixText, ...rest] = text.trim().split("/");
  if (rest.length > 0) return undefined;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (prefixText === undefined) return { address, prefix: max, family };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family };
}

/** Throws ERR_FETCH_CONFIG for an entry of `allowedCidrs` that is not a CIDR or address. */
export function createSsrfGuard(allowedCidrs: readonly string[] = []): SsrfGuard {
  const allowed = new BlockList();
  for (const entry of allowedCidrs) {
    const cidr = parseCidr(entry);
    if (!cidr) {
      throw new FetchError("ERR_FETCH_CONFIG", `allowed CIDR ${JSON.stringify(entry)} is not a CIDR or IP address`, {
        details: { allowedCidr: entry },
      });
    }
    allowed.addSubnet(cidr.address, cidr.prefix, cidr.family === 4 ? "ipv4" : "ipv6");
  }

  const isAllowed = (address: string, classification: Classification): boolean => {
    const bare = parseWithZone(address);
    if (!bare.bytes || bare.zoned) return false;
    const plain = bare.bytes.length === 4 ? formatV4(bare.bytes) : address.replace(/^\[|\]$/g, "");
    // BlockList already treats ::ffff:a.b.c.d as a.b.c.d; NAT64 and 6to4 carriers need the explicit look.
    if (allowed.check(plain, bare.bytes.length === 4 ? "ipv4" : "ipv6")) return true;
    return classification.embedded !== undefined && allowed.check(classification.embedded, "ipv4");
  };

  const check = (address: string): SsrfVerdict => {
    const classification = classifyAddress(address);
    if (!classification) return { allowed: true, address };
    if (classification.range !== "invalid" && allowedCidrs.length > 0 && isAllowed(address, classification)) {
      return { allowed: true, address, allowedBy: "allowedCidrs" };
    }
    return { allowed: false, address, ...classification };
  };

  return {
    check,
    assertAllowed(address, context) {
      const verdict = check(address);
      if (verdict.allowed) return;
      throw blockedError(verdict, context);
    },
  };
}

export function blockedError(
  verdict: Extract<SsrfVerdict, { allowed: false }>,
  context: Readonly<Record<string, unknown>>,
): FetchError {
  const via = verdict.embedded === undefined ? "" : ` (carrying ${verdict.embedded})`;
  return new FetchError(
    "ERR_FETCH_SSRF_BLOCKED",
    `refusing to connect to ${verdict.address}${via}: ${verdict.range} address (${verdict.cidr}) not in the relationship's allowed CIDRs`,
    {
      details: {
        ...context,
        address: verdict.address,
        range: verdict.range,
        cidr: verdict.cidr,
        ...(verdict.embedded === undefined ? {} : { embedded: verdict.embedded }),
      },
    },
  );
}
