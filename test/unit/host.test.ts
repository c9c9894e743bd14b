import { resolveHostSettings } from "../../src/model/host";
import { hostBootstrapScript } from "../../src/provision/host";
import { driftCheckScript } from "../../src/render/drift";
import { renderFirewall, renderFirewallFragment, renderFirewallUnit, renderSshPorts } from "../../src/render/firewall";
import { golden } from "../support/golden";
import { goldenOs } from "../support/unit/fixtures";

/** The golden host's firewall openings: PostgreSQL to a private network, nginx to everyone. */
const FIREWALL_RULES = [
    { port: 5432, protocol: "tcp" as const, sources: ["10.0.0.0/24", "fd00::/8"], owner: "postgresql" },
    { port: 443, protocol: "tcp" as const, owner: "nginx" },
];

describe("host: golden files (update with `npm run golden:update`, review the diff)", () => {
    golden("host", "firewall.nft", () => renderFirewall(FIREWALL_RULES));
    golden("host", "ssh-ports.nft", () => renderSshPorts("22, 2222"));
    golden("host", "pulumi-matrix-drift", () => driftCheckScript());
    golden("host", "firewall.d/postgres.nft", () => renderFirewallFragment('PostgresDatabase "golden"', [FIREWALL_RULES[0]]));
    golden("host", "pulumi-matrix-firewall.service", () => renderFirewallUnit("/etc/pulumi-matrix/firewall.nft"));
    golden("host", "scripts/host-bootstrap.sh", () =>
        hostBootstrapScript(resolveHostSettings("golden", { firewall: { rules: [FIREWALL_RULES[1]] } }), goldenOs()),
    );
});
