export { renderHomeserverYaml, renderLogConfig, renderPgpass, renderEmailSecretFragment, homeserverConfig, mergeExtraConfig } from "./synapse/homeserver";
export { signingKeyFromPem, parseSigningKeyFile, signingKeyIdFor, ed25519PublicKeyFromOpenssh } from "./synapse/signingKey";
export { renderCreateDatabaseSql, renderPostgresConf, renderPgHbaBlock, renderBackupScript } from "./postgres";
export { renderSynapseMainUnit, renderSynapseTarget, renderBackupUnits } from "./systemd";
export { renderFirewall, renderFirewallUnit } from "./firewall";
export { renderYaml } from "./yaml";
