// A file set's check with the real programs (issue 19 item 6): nginx's site
// through the very script the ReverseProxy sends (proxyServerScript, in the
// sandbox of proxy.test.ts with Debian's nginx), and a firewall fragment
// through firewallFragmentSet with the real `nft -c`. An invalid candidate is
// refused, the previous file stays, and nginx still restarts on it.
import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";

import { HOST_FILES } from "../../src/model/host";
import { PROXY_FILES, resolveReverseProxySettings, synapseListener } from "../../src/model/proxy";
import { applyFileSet } from "../../src/provision/apply";
import { firewallFragmentPath, firewallFragmentSet } from "../../src/provision/host";
import { proxyServerScript, servedCertificate } from "../../src/provision/proxy";
import { script } from "../../src/provision/shell";
import { FIREWALL_FRAGMENT_DIR, renderFirewall, renderSshPorts, SSH_PORTS_FILE } from "../../src/render/firewall";
import { NginxSite } from "../../src/render/proxy";
import { ProxySandbox } from "../support/integration/proxySandbox";
import { goldenSynapseSettings } from "../support/unit/fixtures";

const COMPONENT = 'ReverseProxy "check"';

describe("a file set's check with nginx and nft: an invalid file is never left in place", function () {
    let sandbox: ProxySandbox;
    // A loopback address of its own, so no other nginx on this machine is in the way.
    const address = `127.${crypto.randomInt(1, 250)}.${crypto.randomInt(1, 250)}.${crypto.randomInt(2, 250)}`;

    before(function () {
        if (process.getuid?.() !== 0) this.skip();
        sandbox = new ProxySandbox("check");
    });
    after(async function () {
        await sandbox?.stopNginx();
    });

    function site(main?: string): NginxSite {
        const synapse = goldenSynapseSettings();
        const proxy = resolveReverseProxySettings(COMPONENT, { acme: { email: "admin@example.com" }, listenAddresses: [address] }, synapse);
        return { proxy, publicBaseUrl: synapse.publicBaseUrl, main: main ?? synapseListener(synapse), workers: [], tls: servedCertificate() };
    }

    it("nginx: a site nginx -t refuses is put back; nginx keeps running and restarts on the previous site", async function () {
        await sandbox.run(proxyServerScript(site(), COMPONENT));
        const master = sandbox.nginxPid();
        assert.ok(master, "nginx runs");
        const good = fs.readFileSync(sandbox.hostPath(PROXY_FILES.conf), "utf8");
        // /etc/nginx is a mount of its own in the sandbox (as a separate /etc or /var could be on a VM):
        // its files were staged at that mount's root, root-only, so the rename into place stays atomic.
        assert.equal(fs.statSync(sandbox.hostPath("/etc/nginx/.pulumi-matrix-staging")).mode & 0o777, 0o700);
        // An upstream nginx cannot resolve: `nginx -t` fails ("host not found in upstream").
        sandbox.reset();
        const r = await sandbox.tryRun(proxyServerScript(site("pm-unresolvable.invalid:8008"), COMPONENT));
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /host not found in upstream "pm-unresolvable\.invalid:8008"/);
        assert.match(r.stderr, /nginx-site: the new files fail their check/);
        assert.equal(fs.readFileSync(sandbox.hostPath(PROXY_FILES.conf), "utf8"), good, "the previous site is back");
        assert.ok(!sandbox.calls().some((c) => /reload|restart/.test(c)), sandbox.calls().join("\n"));
        assert.equal(sandbox.nginxPid(), master, "nginx was not touched");
        // What a reboot or the next restart meets: a configuration nginx starts with.
        await sandbox.run(script("restart", ["nginx -t -q", "systemctl restart nginx.service", "systemctl is-active -q nginx.service"]));
        assert.ok(sandbox.nginxPid(), "nginx runs after a restart");
        // And the next deploy of a valid site changes nothing.
        assert.doesNotMatch(await sandbox.run(proxyServerScript(site(), COMPONENT)), /updated/);
    });

    it("nft: a fragment the ruleset check refuses is put back", async function () {
        const ruleset = renderFirewall([]);
        await sandbox.run(
            script("firewall", [
                applyFileSet({
                    name: "test-host-firewall",
                    files: [
                        { path: SSH_PORTS_FILE, content: renderSshPorts("22") },
                        { path: HOST_FILES.firewallRuleset, content: ruleset },
                    ],
                }),
                `mkdir -p ${FIREWALL_FRAGMENT_DIR}`,
            ]),
        );
        const set = firewallFragmentSet('PostgresDatabase "check"', [{ port: 5432, protocol: "tcp", sources: ["10.0.0.0/8"], owner: "postgres" }]);
        await sandbox.run(script("fragment", [applyFileSet(set)]));
        const path = sandbox.hostPath(firewallFragmentPath('PostgresDatabase "check"'));
        const good = fs.readFileSync(path, "utf8");
        assert.match(good, /dport 5432/);
        // A source nft cannot parse: the whole ruleset fails its check.
        const broken = { ...set, files: [{ ...set.files[0], content: `${good}add rule inet pulumi_matrix input tcp dport 5433 acept\n` }] };
        const r = await sandbox.tryRun(script("fragment", [applyFileSet(broken)]));
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /acept/);
        assert.match(r.stderr, /firewall-postgresdatabase-check: the new files fail their check/);
        assert.equal(fs.readFileSync(path, "utf8"), good);
    });
});
