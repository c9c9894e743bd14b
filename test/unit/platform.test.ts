import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Host } from "../../components/Host";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { heredocDelimiter, sh, raw } from "../../src/provision/sh";
import { applyFileSet } from "../../src/provision/apply";
import { runWithMocks } from "../support/unit/mocks";
import { TEST_SSH_KEY } from "../support/unit/fixtures";

const ROOT = path.join(__dirname, "..", "..");

describe("the component platform", () => {
    it("a PostgresDatabase placed on a plain Host in a user's own stack opens exactly its port to exactly its clients", async () => {
        const { mocks } = await runWithMocks(
            () => {
                const host = new Host("db", { host: "203.0.113.11", privateKey: TEST_SSH_KEY });
                return new PostgresDatabase("pg", { host, listenAddresses: ["127.0.0.1", "10.0.0.5"], allowedClients: ["10.0.0.4/32", "fd00::4/128"] });
            },
            (db) => [db.connection],
        );
        const server = String(mocks.byName("pg-server").inputs.stdin);
        const rules = server.split("\n").filter((l) => l.startsWith("add rule"));
        assert.deepEqual(rules, [
            'add rule inet pulumi_matrix input ip saddr { 10.0.0.4/32 } tcp dport 5432 accept comment "postgresql"',
            'add rule inet pulumi_matrix input ip6 saddr { fd00::4/128 } tcp dport 5432 accept comment "postgresql"',
        ]);
        assert.match(server, /pm_write firewall-postgresdatabase-pg \/etc\/pulumi-matrix\/firewall\.d\/postgresdatabase-pg\.nft/);
        const bootstrap = String(mocks.byName("db-bootstrap").inputs.stdin);
        assert.doesNotMatch(bootstrap, /5432/);
        assert.match(bootstrap, /include "\/etc\/pulumi-matrix\/firewall\.d\/\*\.nft"/);
    });

    it("a PostgresDatabase without other clients opens nothing (its fragment is empty)", async () => {
        const { mocks } = await runWithMocks(
            () => new PostgresDatabase("pg", { host: new Host("db", { host: "203.0.113.11", privateKey: TEST_SSH_KEY }) }),
            (db) => [db.connection],
        );
        assert.deepEqual(
            String(mocks.byName("pg-server").inputs.stdin)
                .split("\n")
                .filter((l) => l.startsWith("add rule")),
            [],
        );
    });

    it("every script names its target readably and carries the re-apply token, so both show in a preview", async () => {
        const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu";
        const { mocks } = await runWithMocks(
            () =>
                new PostgresDatabase("pg", {
                    host: new Host("db", { host: "203.0.113.11", port: 2222, privateKey: TEST_SSH_KEY, hostKey, reapply: "2026-11-27" }),
                }),
            (db) => [db.connection],
        );
        for (const name of ["db-bootstrap", "pg-server"]) {
            const stdin = String(mocks.byName(name).inputs.stdin);
            assert.match(
                stdin,
                /^# target: root@203\.0\.113\.11:2222, host key ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\n# re-apply: 2026-11-27\n# pulumi-matrix /,
            );
        }
    });

    it("two components claiming one port on one Host fail with both names and the port", async () => {
        await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY });
            const db = new PostgresDatabase("pg", { host });
            assert.throws(
                () => new SynapseHomeserver("synapse", { host, database: db, serverName: "example.com", httpPort: 5432 }),
                /SynapseHomeserver "synapse": synapse http listener port is 5432; PostgresDatabase "pg" \(postgresql\) already uses tcp port 5432 on 127\.0\.0\.1 of Host "vm"; choose another port/,
            );
            assert.throws(
                () => new PostgresDatabase("pg2", { host }),
                /PostgresDatabase "pg2": postgresql port is 5432; PostgresDatabase "pg" \(postgresql\) already uses/,
            );
            assert.doesNotThrow(() => new PostgresDatabase("pg3", { host, port: 5433 }));
        });
    });

    it("only components/remote.ts constructs command.remote.Command", () => {
        const dir = path.join(ROOT, "components");
        const users = fs.readdirSync(dir).filter((f) => /remote\.Command\(/.test(fs.readFileSync(path.join(dir, f), "utf8")));
        assert.deepEqual(users, ["remote.ts"]);
    });

    it("quoting by construction: values are quoted, raw() and nested fragments are not, values inside quotes are refused", () => {
        assert.equal(sh`rm -f ${"/tmp/a b"} ${["x", "it's"]} ${raw("$HOME")} ${sh`${"y z"}`}`.text, `rm -f '/tmp/a b' x 'it'\\''s' $HOME 'y z'`);
        assert.equal(sh`echo "$(cat ${"/etc/a b"})"`.text, `echo "$(cat '/etc/a b')"`);
        assert.throws(() => sh`echo '${"x"}'`, /inside single quotes/);
        assert.throws(() => sh`echo "${"x"}"`, /inside double quotes/);
        assert.doesNotThrow(() => sh`# it's a comment\necho ${"x"}`);
    });

    it("one heredoc delimiter rule: PM_EOF unless the content has that line, whatever else changes", () => {
        assert.equal(heredocDelimiter("a\n"), "PM_EOF");
        assert.equal(heredocDelimiter("something else entirely\n"), "PM_EOF");
        assert.equal(heredocDelimiter("PM_EOF\n"), "PM_EOF_1");
        assert.equal(heredocDelimiter("PM_EOF\nPM_EOF_1\n"), "PM_EOF_2");
        assert.equal(heredocDelimiter("x PM_EOF\n"), "PM_EOF");
    });

    it("file sets refuse names that would not be safe in the state directory", () => {
        assert.throws(() => applyFileSet({ name: "../etc", files: [] }), /file set name/);
        assert.throws(() => applyFileSet({ name: "ok", files: [{ path: "relative", content: "" }] }), /not absolute/);
    });
});
