import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { FirewallRule, OsInfo, checkSupportedOs, sudoPrefix, validateFirewallRules, validateSsh } from "../src/model/host";
import { Checker } from "../src/model/validate";
import { hostBootstrapScript, hostProbeCommand } from "../src/provision/host";
import { bashCommand } from "../src/provision/shell";
import { childName, typeToken } from "./naming";

/** A jump host the SSH connection goes through. */
export interface BastionArgs {
    /** Address of the bastion. */
    host: pulumi.Input<string>;
    /** SSH port of the bastion. Default 22. */
    port?: pulumi.Input<number>;
    /** Login user on the bastion. Default: the host's user. */
    user?: pulumi.Input<string>;
    /** Private key for the bastion (secret). Default: the host's key. */
    privateKey?: pulumi.Input<string>;
}

export interface HostArgs {
    /** Address (IP or DNS name) the SSH client dials, e.g. a cloud VM's public IP output. */
    host: pulumi.Input<string>;
    /** SSH port the client dials. Default 22. */
    port?: number;
    /** Login user: root, or a user with passwordless sudo (e.g. `debian`, `ubuntu`). Default `root`. */
    user?: string;
    /** Private key in OpenSSH or PEM form. Stored as a secret. */
    privateKey: pulumi.Input<string>;
    /** The host's public SSH key (`ssh-ed25519 AAAA...`); when set, the host is verified. Default: not checked. */
    hostKey?: pulumi.Input<string>;
    /** Reach the host through a jump host. */
    bastion?: BastionArgs;
    /** How long to wait for SSH and cloud-init on a freshly booted VM. Default `20m`. */
    bootTimeout?: string;
    /** Default-deny inbound firewall (nftables). Default enabled. */
    firewall?: {
        /** Turn the firewall on. Default true. */
        enabled?: boolean;
        /** The port sshd listens on inside the host (kept open, as is any port sshd really listens on). Default 22. */
        sshPort?: number;
        /** Openings; components in a MatrixStack add theirs. Default none. */
        rules?: FirewallRule[];
    };
    /** Install and enable unattended security upgrades. Default true. */
    unattendedUpgrades?: boolean;
    /** NTP servers for systemd-timesyncd. Default: the distribution's. */
    ntpServers?: string[];
    /** Extra Debian packages to install. Default none. */
    extraPackages?: string[];
}

/**
 * A Debian or Ubuntu machine reached over SSH: waits for it to boot, checks
 * the OS, and bootstraps packages, unattended upgrades, time sync and the
 * firewall. Components placed on it use `connection`, `sudo` and depend on `ready`.
 */
export class Host extends pulumi.ComponentResource {
    /** The SSH connection every command on this host uses (secret: carries the key). */
    readonly connection: pulumi.Output<command.types.input.remote.ConnectionArgs>;
    /** The OS found at first contact. */
    readonly os: pulumi.Output<OsInfo>;
    /** `sudo -n ` for a non-root user, empty for root. */
    readonly sudo: string;
    /** Depend on this to run after the host is bootstrapped. */
    readonly ready: pulumi.Resource;
    /** The firewall rules this host opens. */
    readonly firewallRules: FirewallRule[];

    constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("Host"), name, {}, opts);
        const component = `Host "${name}"`;
        const user = args.user ?? "root";
        const port = args.port ?? 22;
        const firewall = { enabled: args.firewall?.enabled ?? true, sshPort: args.firewall?.sshPort ?? 22, rules: args.firewall?.rules ?? [] };
        const c = new Checker(component);
        c.port("port", port);
        c.port("firewall.sshPort", firewall.sshPort);
        c.check("bootTimeout", args.bootTimeout, args.bootTimeout === undefined || /^\d+(s|m|h)$/.test(args.bootTimeout), "expected a duration such as 20m, 900s or 1h");
        for (const p of args.extraPackages ?? []) c.check("extraPackages", p, /^[a-z0-9][a-z0-9+.-]+$/.test(p), "expected Debian package names such as htop");
        for (const s of args.ntpServers ?? []) c.check("ntpServers", s, /^[A-Za-z0-9.:-]+$/.test(s), "expected host names or addresses such as 0.debian.pool.ntp.org");
        c.done();
        validateFirewallRules(component, firewall.rules);
        validateSsh(component, { port, user });
        // The address may be another resource's output: checked once known, and every command waits for it.
        const address = pulumi.output(args.host).apply((h) => { validateSsh(component, { host: h, port, user }); return h; });

        this.sudo = sudoPrefix(user);
        this.firewallRules = firewall.rules;
        const bastion = args.bastion;
        this.connection = pulumi.secret(pulumi.output({
            host: address,
            port,
            user,
            privateKey: args.privateKey,
            hostKey: args.hostKey,
            ...(bastion ? { proxy: { host: bastion.host, port: bastion.port ?? 22, user: bastion.user ?? user, privateKey: bastion.privateKey ?? args.privateKey } } : {}),
        }));

        // Absorbs a booting VM: dial until SSH answers, bounded by the create timeout.
        const probe = new command.remote.Command(childName(name, "probe"), {
            connection: this.connection.apply((conn) => ({ ...conn, dialErrorLimit: -1, perDialTimeout: 10 })),
            create: hostProbeCommand(),
            addPreviousOutputInEnv: false,
        }, { parent: this, customTimeouts: { create: args.bootTimeout ?? "20m" } });

        this.os = probe.stdout.apply((out) => checkSupportedOs(component, out));

        const bootstrap = new command.remote.Command(childName(name, "bootstrap"), {
            connection: this.connection,
            create: bashCommand(this.sudo),
            stdin: this.os.apply((os) => hostBootstrapScript({
                os,
                extraPackages: args.extraPackages ?? [],
                unattendedUpgrades: args.unattendedUpgrades ?? true,
                ntpServers: args.ntpServers ?? [],
                firewall,
            })),
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [probe], customTimeouts: { create: "30m", update: "30m" } });
        this.ready = bootstrap;
        this.registerOutputs({ os: this.os });
    }
}
