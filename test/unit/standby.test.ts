// `standby`: a VM that holds the server without running it (a move to a new
// VM, README "Moving to a new VM"). Every step that would start Synapse, call
// its API, run a timer or ask a CA through HTTP-01 says so and waits; the
// backup takes the move's final one, the restore keeps a standby's copy.

import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { MatrixStack, MatrixStackArgs } from "../../components/MatrixStack";
import { BackupOptions } from "../../src/model/backup";
import { ConfigErrors } from "../../src/model/errors";
import { planStack } from "../../src/model/stack";
import { certificateScript } from "../../src/provision/proxy";
import { stackArgs, TEST_HOST_KEY } from "../support/unit/fixtures";
import { runWithMocks } from "../support/unit/mocks";

const BACKUP: BackupOptions & { password: string; sftpPrivateKey: string } = {
    repository: "sftp://backup@backup.example.com:2222//srv/restic/matrix",
    sftpKnownHosts: `[backup.example.com]:2222 ${TEST_HOST_KEY}`,
    password: "SECRETresticpw",
    sftpPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETsshkeymaterialnotreal\n-----END OPENSSH PRIVATE KEY-----\n",
    restoreFrom: "latest",
};

/** Every service with a step standby changes: workers, backups with a restore, maintenance, the alert room, TURN with its certificate. */
function args(standby: boolean): MatrixStackArgs {
    return {
        ...stackArgs({ standby }),
        workers: { instances: { federation_reader: 1, federation_sender: 1 } },
        backup: BACKUP,
        maintenance: { mediaCache: { enabled: true } },
        monitoring: { alertRoom: { room: "#ops:example.com" } },
        turn: { domain: "turn.example.com" },
    };
}

/** The stack's steps under mocks, once the last of them (the certificate, TURN's Synapse config) are registered. */
async function steps(standby: boolean) {
    const { mocks } = await runWithMocks(() => new MatrixStack("prod", args(standby)));
    const last = ["prod-proxy-certificate", "prod-turn-synapse-config"];
    for (let i = 0; i < 300 && !last.every((n) => mocks.resources.some((r) => r.name === n)); i++) await new Promise((r) => setTimeout(r, 50));
    // Quotes left out: the scripts quote a word only where the shell needs it.
    const stdin = (name: string) => String(mocks.byName(name).inputs.stdin).replace(/'/g, "");
    return { mocks, stdin };
}

describe("standby: a VM that holds the server without running it", () => {
    it("Synapse and its workers are configured, then stopped and disabled; nothing starts them", async () => {
        const { stdin } = await steps(true);
        const config = stdin("prod-synapse-config");
        assert.match(config, /systemctl disable -q --now matrix-synapse\.target; echo stopped matrix-synapse\.target: standby/);
        assert.match(config, /systemctl disable -q --now matrix-synapse\.service/);
        assert.match(config, /synapse-config/, "the config is still written");
        assert.doesNotMatch(config, /systemctl (start|enable)|rolling|Synapse healthy/);
        const workers = stdin("prod-workers-config");
        assert.match(workers, /systemctl disable -q --now matrix-synapse-worker@federation_reader1\.service/);
        assert.doesNotMatch(workers, /systemctl (start|enable)|healthy/);
    });

    it("nothing calls Synapse's API: the admin account and the alert room's bot wait for the end of standby", async () => {
        const { stdin } = await steps(true);
        assert.match(stdin("prod-synapse-admin"), /the account admin is set up once Synapse runs/);
        assert.doesNotMatch(stdin("prod-synapse-admin"), /register_user|python/);
        assert.match(stdin("prod-monitoring-alert-room"), /the alert room.s bot is set up once Synapse runs/);
        assert.doesNotMatch(stdin("prod-monitoring-alert-room"), /alert-room\.py setup/);
        // Its password still moves into Synapse's secrets: the final backup of a server going into standby carries it.
        assert.match(
            stdin("prod-monitoring-alert-room"),
            /mv -- \/etc\/pulumi-matrix\/monitoring\/private\/alert-room-password \/etc\/matrix-synapse\/secrets\/alert_room_bot_password/,
        );
    });

    it("timers stay off: the nightly backup and the maintenance; the final backup's step runs after Synapse's config step stopped it", async () => {
        const { mocks, stdin } = await steps(true);
        assert.match(stdin("prod-backup-setup"), /systemctl disable -q --now pulumi-matrix-backup\.timer/);
        assert.doesNotMatch(stdin("prod-backup-setup"), /systemctl enable/);
        assert.match(stdin("prod-maintenance-timers"), /systemctl disable -q --now [a-z-]+\.timer/);
        assert.doesNotMatch(stdin("prod-maintenance-timers"), /enable -q --now/);
        const final = mocks.byName("prod-backup-final");
        assert.match(String(final.inputs.stdin).replace(/'/g, ""), /pulumi-matrix-backup final/);
        // After every Synapse process stopped, and after the alert room's step moved the bot's password among Synapse's secrets.
        for (const before of ["prod-synapse-config", "prod-workers-config", "prod-monitoring-alert-room"])
            assert.ok(mocks.byName(before).seq < final.seq, before);
        assert.match(stdin("prod-backup-restore"), /--once --standby --no-start/);
    });

    it("an HTTP-01 certificate waits (the names point to the live server); DNS-01 asks as always", async () => {
        const { stdin } = await steps(true);
        for (const step of ["prod-proxy-certificate", "prod-turn-certificate"]) {
            assert.match(stdin(step), /is requested when standby ends \(HTTP-01 needs their DNS to point here\)/, step);
            assert.doesNotMatch(stdin(step), /certbot certonly/, step);
        }
        const { turn: _, ...noTurn } = args(true);
        const dns01 = {
            ...noTurn,
            proxy: { acme: { email: "admin@example.com", challenge: "dns-01-cloudflare" as const }, cloudflareApiToken: "SECRETtoken" },
        };
        const proxy = planStack("prod", dns01, { stack: "prod" }).proxy!.settings;
        assert.equal(proxy.acme.standby, true);
        assert.match(certificateScript(proxy), /certbot certonly/);
    });

    it("out of standby: everything starts again, the timers too, and the next standby takes a final backup again", async () => {
        const { mocks, stdin } = await steps(false);
        assert.match(stdin("prod-synapse-config"), /Synapse healthy/);
        assert.match(stdin("prod-synapse-admin"), /register_user/);
        assert.match(stdin("prod-backup-setup"), /systemctl enable -q pulumi-matrix-backup\.timer/);
        assert.match(stdin("prod-backup-setup"), /rm -f -- \/var\/lib\/pulumi-matrix\/backup\/final-backup/);
        assert.match(stdin("prod-backup-restore"), /--once --no-start/);
        assert.match(stdin("prod-proxy-certificate"), /certbot certonly/);
        assert.ok(!mocks.resources.some((r) => r.name === "prod-backup-final"), "no final backup out of standby");
    });

    it("Cloudflare records are retained in standby (the stack the server moves to takes them over), and deleted with the stack otherwise", async () => {
        const retained = async (standby: boolean) => {
            const opts: Record<string, boolean | undefined> = {};
            const transformations = [
                (a: pulumi.ResourceTransformationArgs) =>
                    void (a.type === "cloudflare:index/dnsRecord:DnsRecord" ? (opts[a.name] = a.opts.retainOnDelete) : undefined),
            ];
            const dns = { zone: { name: "example.com" }, ipv4: "203.0.113.10", delegation: "srv" as const, cloudflare: true };
            await runWithMocks(() => new MatrixStack("prod", { ...args(standby), dns }, { transformations }));
            return opts;
        };
        const during = await retained(true);
        assert.ok(Object.keys(during).length >= 3 && Object.values(during).every((v) => v === true), JSON.stringify(during));
        const live = await retained(false);
        assert.deepEqual(Object.keys(live), Object.keys(during));
        assert.ok(
            Object.values(live).every((v) => v === false),
            JSON.stringify(live),
        );
    });

    it("is refused without backups: a standby is one step of a move through the backup repository", () => {
        assert.throws(
            () => planStack("prod", stackArgs({ standby: true }), { stack: "prod" }),
            (e: Error) => {
                assert.ok(e instanceof ConfigErrors || e.name === "ConfigError", e.message);
                assert.match(
                    e.message,
                    /MatrixStack "prod": synapse\.standby is true; a standby is one step of a move .*: set backup \(backupRepository\), or remove standby/,
                );
                return true;
            },
        );
    });
});
