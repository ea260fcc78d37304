import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway, TOKENS } from "../api/admin/support.js";
import { runCapturing } from "./support/run-cli.js";

let a: Gateway;
let b: Gateway;

beforeAll(async () => {
  a = await startGateway({ trustDomain: "a.test" });
  b = await startGateway({ trustDomain: "b.test" });
}, 30_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

async function cli(gateway: Gateway, args: string[], token: string = TOKENS.admin) {
  const { host, port } = gateway.app.addresses.internal;
  const result = await runCapturing(args, {
    env: { BUNDLEGATE_API_URL: `http://${host}:${port}`, BUNDLEGATE_API_TOKEN: token },
  });
  for (const secret of Object.values(TOKENS)) {
    expect(result.stdout).not.toContain(secret);
    expect(result.stderr).not.toContain(secret);
  }
  return result;
}

describe("bundlegate admin commands against the real API", () => {
  it("onboards a partner from an invitation and runs it through its lifecycle", async () => {
    const invite = await cli(a, ["invite", "create"], TOKENS.writer);
    expect(invite.code, invite.stderr).toBe(0);
    const token = invite.stdout.trim();
    expect(token.split(".")).toHaveLength(3);

    const shown = await cli(b, ["invite", "show", token]);
    expect(shown.stdout).toContain("a.test");

    const accepted = await cli(b, ["invite", "accept", token, "--owner", "platform", "--json"], TOKENS.writer);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(JSON.parse(accepted.stdout).relationship).toMatchObject({ trust_domain: "a.test", state: "pending" });

    const list = await cli(b, ["relationships", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/a\.test\s+pending\s+platform\s+https_spiffe/);

    const denied = await cli(b, ["relationships", "approve", "a.test"], TOKENS.writer);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("ERR_ADMIN_FORBIDDEN");

    expect((await cli(b, ["relationships", "approve", "a.test"], TOKENS.approver)).code).toBe(0);
    // The invitation carried the endpoint URL as A's listener sees it (127.0.0.1): allow it to be reached.
    expect(
      (await cli(b, ["relationships", "update", "a.test", "--allow-cidr", "127.0.0.0/8"], TOKENS.admin)).code,
    ).toBe(0);
    const refreshed = await cli(b, ["relationships", "refresh", "a.test"], TOKENS.writer);
    expect(refreshed.code, refreshed.stdout + refreshed.stderr).toBe(0);

    const show = await cli(b, ["relationships", "show", "a.test"]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain("active");
    expect(show.stdout).toContain(a.app.localBundle.current().digest);

    expect((await cli(b, ["relationships", "suspend", "a.test", "--reason", "drill"], TOKENS.writer)).code).toBe(0);
    expect((await cli(b, ["relationships", "resume", "a.test"], TOKENS.approver)).code).toBe(0);

    const audit = await cli(b, ["audit", "list", "--trust-domain", "a.test", "--json"], TOKENS.auditor);
    expect(audit.code, audit.stderr).toBe(0);
    expect(JSON.parse(audit.stdout).entries.map((e: { action: string }) => e.action)).toEqual([
      "relationship.resume",
      "relationship.suspend",
      "relationship.update",
      "relationship.approve",
      "relationship.create",
    ]);

    expect((await cli(b, ["relationships", "delete", "a.test", "--yes"], TOKENS.writer)).code).toBe(0);
    const gone = await cli(b, ["relationships", "show", "a.test"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("ERR_RELATIONSHIP_NOT_FOUND");
  }, 30_000);
});
