import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

import { bashCommand, secretScript } from "../src/provision/shell";
import { withScriptTarget } from "../src/provision/target";

/**
 * The only place that creates `command.remote.Command`: running a script on
 * a host, and the first-contact probe. Connection, `bash -s`, timeouts and,
 * for scripts that carry secrets, the secret flags are set here once.
 */

/** What a script needs of the host it runs on. */
export interface ScriptTarget {
    /** The SSH connection; only its private keys are secret Inputs. */
    connection: command.types.input.remote.ConnectionArgs;
    /** `sudo -n ` for a non-root login, empty for root. */
    sudo: string;
    /** The host is bootstrapped once this has run. */
    ready: pulumi.Resource;
    /** Changing this re-runs every script on the host (see `HostArgs.reapply`). Default: unset. */
    reapply?: pulumi.Input<string>;
}

export interface HostScriptArgs {
    /** The host the script runs on. */
    host: ScriptTarget;
    /** The bash script, sent on stdin (never on the command line). */
    script: pulumi.Input<string>;
    /**
     * The script carries secrets: stdin is a secret input, the provider logs
     * nothing (`logging: "none"`), stdout/stderr are secret outputs, and what
     * the script prints stays in a root-only log on the host
     * (`secretScript`), since a failing command's error message carries its
     * whole output in clear.
     * Default false (the script shows in previews as a readable diff).
     */
    secret?: boolean;
    /** Run after these too (the host's `ready` is always waited for); a Promise may stand for a resource made later. Default none. */
    after?: pulumi.Input<pulumi.Resource>[];
    /** Create and update timeout, like `30m`. Default `10m`. */
    timeout?: string;
}

/** Runs a provisioning script on a host; it runs again whenever the script's text changes. */
export function hostScript(name: string, args: HostScriptArgs, opts: { parent: pulumi.Resource }): command.remote.Command {
    const timeout = args.timeout ?? "10m";
    const c = args.host.connection;
    const stdin = pulumi
        .all([args.script, c.host, c.port ?? 22, c.user ?? "root", c.hostKey, args.host.reapply])
        .apply(([text, host, port, user, hostKey, reapply]) =>
            // A secret script's output stays on the host: a failing command's error shows all it printed, in clear.
            withScriptTarget(args.secret ? secretScript(text, name) : text, { host, port, user, hostKey, reapply }),
        );
    return new command.remote.Command(
        name,
        {
            connection: args.host.connection,
            create: bashCommand(args.host.sudo),
            stdin: args.secret ? pulumi.secret(stdin) : stdin,
            addPreviousOutputInEnv: false,
            ...(args.secret ? { logging: "none" as const } : {}),
        },
        {
            parent: opts.parent,
            dependsOn: [args.host.ready, ...(args.after ?? [])],
            customTimeouts: { create: timeout, update: timeout },
            ...(args.secret ? { additionalSecretOutputs: ["stdout", "stderr"] } : {}),
        },
    );
}

/**
 * First contact with a host that may still be booting: dials until SSH
 * answers, bounded by `timeout`, and returns what `probe` prints.
 */
export function hostProbe(
    name: string,
    args: { connection: command.types.input.remote.ConnectionArgs; probe: string; timeout: string },
    opts: { parent: pulumi.Resource },
): command.remote.Command {
    return new command.remote.Command(
        name,
        {
            connection: { ...args.connection, dialErrorLimit: -1, perDialTimeout: 10 },
            create: args.probe,
            addPreviousOutputInEnv: false,
        },
        // An update (a changed connection, e.g. a replaced VM) dials again: bounded the same way.
        { parent: opts.parent, customTimeouts: { create: args.timeout, update: args.timeout } },
    );
}
