import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

import { componentLabel, ConfigError } from "../src/model/errors";
import {
    acceptAnyHostKeyWarning,
    checkSupportedOs,
    HostOptions,
    hostPortClaims,
    HostSettings,
    OsInfo,
    PortClaim,
    PortRegistry,
    resolveHostSettings,
    sudoPrefix,
    validateHostKey,
    validatePrivateKey,
    validateSsh,
} from "../src/model/host";
import { isIpAddress } from "../src/model/validate";
import { hostBootstrapScript, hostProbeCommand } from "../src/provision/host";
import { childName, typeToken } from "./naming";
import { hostProbe, hostScript, ScriptTarget } from "./remote";

/**
 * The host key a connection verifies, checked now when it is plain text and once known otherwise; undefined only
 * with the explicit opt-out, which warns on every run. Neither given: a ConfigError before anything is dialled.
 */
function verifiedHostKey(
    component: string,
    prefix: string,
    key: pulumi.Input<string> | undefined,
    acceptAny: boolean | undefined,
): pulumi.Output<string> | undefined {
    const optOut = `${prefix}acceptAnyHostKey`;
    // The stack program's key for the same switch, so its users read the name they can set.
    const optOutHint = prefix === "" ? `${optOut} (the stack's sshAcceptAnyHostKey)` : optOut;
    if (acceptAny !== undefined && typeof acceptAny !== "boolean")
        throw new ConfigError(component, optOut, acceptAny, "expected true (connect without verifying the host's key) or false");
    // Empty counts as none here: a stack's undeclared key reads as "".
    if (acceptAny && (key === undefined || (typeof key === "string" && key.trim() === ""))) {
        pulumi.log.warn(acceptAnyHostKeyWarning(component, optOut));
        return undefined;
    }
    const check = (k: string) => validateHostKey(component, `${prefix}hostKey`, k, optOutHint);
    // A plain value (or none) fails here, before any resource exists; an Output when it resolves, before the probe dials.
    if (typeof key === "string" || key === undefined) return pulumi.output(check(key as string));
    return pulumi.output(key).apply(check);
}

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
    /**
     * The bastion's own SSH public key (`ssh-ed25519 AAAA...`, one line), verified before anything is sent through it.
     * Required unless `acceptAnyHostKey` is true. Get it out of band (see the README's "Host key").
     */
    hostKey?: pulumi.Input<string>;
    /** Connect to the bastion without verifying its key (not recommended: a warning is logged on every run). Default false. */
    acceptAnyHostKey?: boolean;
}

export interface HostArgs extends HostOptions {
    /** Address (IP or DNS name) the SSH client dials, e.g. a cloud VM's public IP output. */
    host: pulumi.Input<string>;
    /** Private key in OpenSSH or PEM form. Stored as a secret. */
    privateKey: pulumi.Input<string>;
    /**
     * The host's SSH public key, one line `<type> <base64> [comment]` (`ssh-ed25519 AAAA...`, as in
     * /etc/ssh/ssh_host_ed25519_key.pub). SSH verifies the host with it before any script (and its secrets) is
     * sent. Required unless `acceptAnyHostKey` is true. Get it out of band: see the README's "Host key".
     */
    hostKey?: pulumi.Input<string>;
    /** Reach the host through a jump host. Default: direct. */
    bastion?: BastionArgs;
    /**
     * The host's address on a private network shared with your other hosts
     * (an IP address, e.g. a cloud VM's private IP output). Services that span
     * hosts use it (Synapse's workers on another host: replication, Redis) and
     * open their ports to it only. Default: none (the host is used alone).
     */
    privateAddress?: pulumi.Input<string>;
    /**
     * Any value; changing it re-runs every script on this host, which rewrites
     * files edited on the host since (see `pulumi-matrix-drift`) and restarts
     * only what they affect. Default: unset (scripts run when their text changes).
     */
    reapply?: pulumi.Input<string>;
    /**
     * The host's settings already resolved from these options (MatrixStack passes its
     * plan's: see `planStack`): used as they are, so they are resolved once
     * per deployment. Default: resolved here.
     */
    resolved?: HostSettings;
}

/**
 * A Debian or Ubuntu machine reached over SSH: waits for it to boot, checks
 * the OS, and bootstraps packages, unattended upgrades, time sync and a
 * default-deny firewall. Components placed on it claim their ports with
 * `claimPorts`, open their own firewall fragments, run their scripts over
 * `connection` and depend on `ready`.
 */
export class Host extends pulumi.ComponentResource implements ScriptTarget {
    /** The SSH connection every command on this host uses (secret as a whole in each command). */
    readonly connection: command.types.input.remote.ConnectionArgs;
    /** The re-apply token (see `HostArgs.reapply`). */
    readonly reapply?: pulumi.Input<string>;
    /** The OS found at first contact. */
    readonly os: pulumi.Output<OsInfo>;
    /** `sudo -n ` for a non-root user, empty for root. */
    readonly sudo: string;
    /** Depend on this to run after the host is bootstrapped. */
    readonly ready: pulumi.Resource;
    /** The host's settings with defaults filled in. */
    readonly settings: HostSettings;
    /** The component name used in errors, e.g. `Host "prod-host"`. */
    readonly label: string;
    /** The resource name it was constructed with (its first argument). */
    readonly name: string;
    /** The address on the private network (see `HostArgs.privateAddress`), when given. */
    readonly privateAddress?: pulumi.Output<string>;
    private readonly ports: PortRegistry;

    constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("Host"), name, {}, opts);
        const component = componentLabel("Host", name);
        this.label = component;
        this.name = name;
        const s = args.resolved ?? resolveHostSettings(component, args);
        this.settings = s;
        this.ports = new PortRegistry(component);
        this.ports.claim(component, hostPortClaims(s));
        const checkAddress = (h: string) => {
            validateSsh(component, { host: h, port: s.port, user: s.user });
            return h;
        };
        const checkKey = (k: string) => {
            validatePrivateKey(component, "privateKey", k);
            return k;
        };
        // Plain values are checked now; values from other resources once they are known.
        if (typeof args.host === "string") checkAddress(args.host);
        if (typeof args.privateKey === "string" || args.privateKey === undefined) checkKey(args.privateKey as string);
        const address = pulumi.output(args.host).apply(checkAddress);
        const checkPrivate = (a: string) => {
            if (!isIpAddress(a))
                throw new ConfigError(component, "privateAddress", a, "expected the host's IP address on the private network, such as 10.0.0.4");
            return a;
        };
        if (typeof args.privateAddress === "string") checkPrivate(args.privateAddress);
        if (args.privateAddress !== undefined) this.privateAddress = pulumi.output(args.privateAddress).apply(checkPrivate);
        const privateKey = pulumi.output(args.privateKey).apply(checkKey);

        this.sudo = sudoPrefix(s.user);
        this.reapply = args.reapply;
        const bastion = args.bastion;
        const hostKey = verifiedHostKey(component, "", args.hostKey, s.acceptAnyHostKey);
        const bastionKey = bastion && verifiedHostKey(component, "bastion.", bastion.hostKey, bastion.acceptAnyHostKey);
        // @pulumi/command keeps the whole connection secret; hostScript repeats the
        // address, port and host key in each script's first line so previews show them.
        const secretKey = pulumi.secret(privateKey);
        this.connection = {
            host: address,
            port: s.port,
            user: s.user,
            privateKey: secretKey,
            // @pulumi/command checks the server's key against it before it sends anything (stdin included).
            ...(hostKey !== undefined ? { hostKey } : {}),
            ...(bastion
                ? {
                      proxy: {
                          host: bastion.host,
                          port: bastion.port ?? 22,
                          user: bastion.user ?? s.user,
                          privateKey: bastion.privateKey !== undefined ? pulumi.secret(bastion.privateKey) : secretKey,
                          ...(bastionKey !== undefined ? { hostKey: bastionKey } : {}),
                      },
                  }
                : {}),
        };

        const probe = hostProbe(childName(name, "probe"), { connection: this.connection, probe: hostProbeCommand(), timeout: s.bootTimeout }, { parent: this });
        this.os = probe.stdout.apply((out) => checkSupportedOs(component, out));
        this.ready = hostScript(
            childName(name, "bootstrap"),
            {
                host: { connection: this.connection, sudo: this.sudo, ready: probe, reapply: this.reapply },
                script: this.os.apply((os) => hostBootstrapScript(s, os)),
                timeout: "30m",
            },
            { parent: this },
        );
        this.registerOutputs({ os: this.os });
    }

    /**
     * Claims ports for a component placed on this host. Throws when another
     * component already listens there, naming both and the port.
     */
    claimPorts(component: string, claims: PortClaim[]): void {
        this.ports.claim(component, claims);
    }

    /** Every port claimed on this host so far, with its component. */
    get claimedPorts(): readonly (PortClaim & { component: string })[] {
        return this.ports.all();
    }
}
