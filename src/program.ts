/**
 * The stack program behind Pulumi.yaml: stack config -> MatrixStack.
 * `pulumi up` per environment (Pulumi.dev.yaml, Pulumi.prod.yaml) deploys a homeserver.
 */
import * as pulumi from "@pulumi/pulumi";
import { MatrixStack } from "../components/MatrixStack";
import { readStackConfig } from "./model/stackConfig";

const cfg = new pulumi.Config("matrix");
const isSet = (key: string) => (pulumi.runtime.getConfig(`matrix:${key}`) ?? "") !== "";
const plain = readStackConfig(cfg);
const externalPassword = plain.postgres.external ? cfg.requireSecret("postgresExternalPassword") : undefined;
if (plain.synapse.email && !isSet("smtpPassword") && plain.synapse.email.smtpUser) {
    pulumi.log.warn("matrix:smtpUser is set but matrix:smtpPassword is not; set it with `pulumi config set --secret smtpPassword`");
}

const stack = new MatrixStack(pulumi.getStack(), {
    host: {
        host: plain.host.host,
        port: plain.host.port,
        user: plain.host.user,
        hostKey: plain.host.hostKey,
        privateKey: cfg.requireSecret("sshPrivateKey"),
        ntpServers: plain.host.ntpServers,
        firewall: { sshPort: plain.host.firewallSshPort },
    },
    synapse: {
        ...plain.synapse,
        // Only when set: an Output of nothing would still look like an imported key.
        signingKey: isSet("signingKey") ? cfg.requireSecret("signingKey") : undefined,
        smtpPassword: isSet("smtpPassword") ? cfg.requireSecret("smtpPassword") : undefined,
    },
    postgres: {
        ...plain.postgres,
        external: plain.postgres.external && externalPassword ? { ...plain.postgres.external, password: externalPassword } : undefined,
    },
});

export const serverName = stack.synapse.serverName;
export const publicBaseUrl = stack.synapse.publicBaseUrl;
export const signingKeyId = stack.synapse.signingKeyId;
export const synapseVersion = stack.synapse.version;
export const adminUserId = stack.synapse.adminUserId;
export const adminPassword = stack.synapse.adminPassword;
export const registrationSharedSecret = stack.synapse.registrationSharedSecret;
export const hostOs = stack.host.os.apply((os) => os.prettyName);
