import { synapseAdminScript, synapseConfigScript, synapseInstallScript, synapseSecretsScript } from "../../src/provision/synapse";
import {
    emailSecretFile,
    pgpassSecretFile,
    renderEmailSecretFragment,
    renderHomeserverYaml,
    renderLogConfig,
    renderPgpass,
} from "../../src/render/synapse/homeserver";
import { renderSynapseMainUnit, renderSynapseTarget } from "../../src/render/synapse/units";
import { golden } from "../support/golden";
import { GOLDEN_PEERS, goldenOs, goldenSynapseSettings } from "../support/unit/fixtures";

describe("synapse: golden files (update with `npm run golden:update`, review the diff)", () => {
    const s = goldenSynapseSettings;
    golden("synapse", "homeserver.yaml", () => renderHomeserverYaml("golden", s(), GOLDEN_PEERS));
    golden("synapse", "log.yaml", () => renderLogConfig(s()));
    golden("synapse", "50-email-secret.yaml", () => renderEmailSecretFragment(s(), "<smtp password>"));
    golden("synapse", "pgpass", () => renderPgpass(GOLDEN_PEERS.database!, "<database password>"));
    golden("synapse", "matrix-synapse.service", () => renderSynapseMainUnit(s(), ["postgresql.service"]));
    golden("synapse", "matrix-synapse.target", () => renderSynapseTarget());
    golden("synapse", "scripts/synapse-install-pip.sh", () => synapseInstallScript(s(), goldenOs()));
    golden("synapse", "scripts/synapse-install-apt.sh", () => synapseInstallScript({ ...s(), installMethod: "apt", paths: { ...s().paths } }, goldenOs()));
    golden("synapse", "scripts/synapse-config.sh", () => synapseConfigScript(s(), GOLDEN_PEERS, "golden"));
    // Secret-bearing scripts, with placeholders where the secrets go.
    golden("synapse", "scripts/synapse-secrets.sh", () =>
        synapseSecretsScript(s(), {
            macaroonSecretKey: "<macaroon secret key>",
            formSecret: "<form secret>",
            registrationSharedSecret: "<registration shared secret>",
            signingKey: "ed25519 a_abcd <seed>",
            files: [pgpassSecretFile(GOLDEN_PEERS.database!, "<database password>"), emailSecretFile(s(), "<smtp password>")],
        }),
    );
    golden("synapse", "scripts/synapse-admin.sh", () => synapseAdminScript(s(), "admin", "<admin password>"));
});
