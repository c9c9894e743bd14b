/**
 * The stack program behind Pulumi.yaml: stack config -> MatrixStack.
 * `pulumi up` per environment (Pulumi.dev.yaml, Pulumi.prod.yaml) deploys a homeserver.
 * Errors name the `matrix:` key the user set (see STACK_KEYS in src/config/keys.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";

import { MatrixStack, MatrixStackArgs } from "../components/MatrixStack";
import { STACK_PARTS, StackOptions } from "./config/keys";
import { readStackConfig } from "./config/read";
import { withStackConfigErrors } from "./config/translate";
import { componentLabel, ConfigError, ConfigErrors, throwIfAny } from "./model/errors";
import { validatePrivateKey } from "./model/host";
import { POSTGRES_DEFAULTS, validatePostgres } from "./model/postgres";
import { validateCloudflareApiToken } from "./model/proxy/acme";
import { RtcOptions } from "./model/rtc";
import { validateAdminUser } from "./model/synapse";
import { parseSigningKeyFile } from "./render/synapse/signingKey";

// `isConfigSecret` is exported at runtime but missing from the package's type declarations.
const { isConfigSecret } = runtimeConfig as unknown as { isConfigSecret: (key: string) => boolean };

const cfg = new pulumi.Config("matrix");
// The raw text of every key, secrets included: their presence and form are checked here, their values travel as secret Outputs.
// Whether a key is stored encrypted is checked here too: Pulumi.yaml declares the optional secrets non-secret (so they can default to "").
const raw = { get: (key: string) => pulumi.runtime.getConfig(`matrix:${key}`), isSecret: (key: string) => isConfigSecret(`matrix:${key}`) };

/** A bad setting ends the program with its message alone (a RunError), not a stack trace; the original error is its `cause`. */
function cleanly<T>(build: () => T): T {
    try {
        return withStackConfigErrors(build, raw);
    } catch (e) {
        if (e instanceof ConfigError || e instanceof ConfigErrors) throw Object.assign(new pulumi.RunError(e.message), { cause: e });
        throw e;
    }
}

/**
 * Values components check only once they are constructed (after the Host
 * registered its commands), or once their Outputs resolve (secrets), are
 * checked now, in plain text, all at once, before anything is built.
 */
function checkKnownValues(options: StackOptions<unknown>): void {
    const errors: ConfigError[] = [];
    const check = (f: () => unknown) => {
        try {
            f();
        } catch (e) {
            if (e instanceof ConfigErrors) errors.push(...e.errors);
            else if (e instanceof ConfigError) errors.push(e);
            else throw e;
        }
    };
    const { host, synapse, postgres, proxy } = STACK_PARTS;
    check(() => validatePrivateKey(componentLabel(host), "privateKey", raw.get("sshPrivateKey") ?? ""));
    check(() => validateAdminUser(componentLabel(synapse), options.synapse.adminUser));
    if (options.synapse.signingKey !== undefined) check(() => parseSigningKeyFile(raw.get("signingKey") ?? "", componentLabel(synapse), "signingKey"));
    const pg = options.postgres.external;
    if (pg) {
        const { port = POSTGRES_DEFAULTS.port, host: address, database, user } = pg;
        check(() => validatePostgres(componentLabel(postgres), { mode: "external", host: address, port, database, user, sslMode: "prefer" }, "external."));
    }
    if (options.proxy.cloudflareApiToken !== undefined)
        check(() => validateCloudflareApiToken(componentLabel(proxy), "cloudflareApiToken", raw.get("acmeCloudflareApiToken") ?? ""));
    throwIfAny(errors);
}

const stack = cleanly(() => {
    const options = readStackConfig(raw, (key) => cfg.requireSecret(key));
    if (options.synapse.email?.smtpUser !== undefined && options.synapse.smtpPassword === undefined) {
        pulumi.log.warn("matrix:smtpUser is set but matrix:smtpPassword is not; set it with `pulumi config set --secret smtpPassword`");
    }
    checkKnownValues(options);
    // mode is "nginx" or "none" (the key table checks it).
    const { mode, ...proxy } = options.proxy;
    // rtc is "livekit" or "none"; without the proxy there is no MatrixRTC either (nothing would serve it).
    const { mode: rtcMode, ...rtc } = options.rtc;
    return new MatrixStack(pulumi.getStack(), {
        ...options,
        proxy: mode === "none" ? false : (proxy as MatrixStackArgs["proxy"]),
        rtc: mode === "none" || rtcMode === "none" ? false : (rtc as RtcOptions),
    });
});

export const serverName = stack.synapse.serverName;
export const publicBaseUrl = stack.synapse.publicBaseUrl;
export const signingKeyId = stack.synapse.signingKeyId;
export const synapseVersion = stack.synapse.version;
export const adminUserId = stack.synapse.adminUserId;
export const adminPassword = stack.synapse.adminPassword;
// Not `registrationSharedSecret`: it creates admin accounts, and whoever may read the stack's secret outputs would hold it
// (README, "Stack outputs": register users on the host instead).
export const hostOs = stack.host.os.apply((os) => os.prettyName);
export const certificateNames = stack.proxy?.certificateNames;
export const zoneFile = stack.zoneFile;
/** The Cloudflare ids of the stack's records (and Worker), for the stack that takes them over in a move (its dnsTakeOver). */
export const dnsCloudflareIds = stack.dns?.cloudflareIds;
export const prometheusScrapeConfig = stack.prometheusScrapeConfig;
// With backups: the commands to run on the VM (as root) for the last good backup's time and for a restore.
export const backupStatusCommand = stack.backup?.statusCommand;
export const restoreCommand = stack.backup?.restoreCommand;
