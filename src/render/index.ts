export {
    renderHomeserverYaml,
    renderLogConfig,
    renderPgpass,
    renderEmailSecretFragment,
    homeserverConfig,
    mergeExtraConfig,
    pgpassSecretFile,
    emailSecretFile,
} from "./synapse/homeserver";
export { renderSynapseMainUnit, renderSynapseTarget } from "./synapse/units";
export { signingKeyFromPem, parseSigningKeyFile, signingKeyIdFor, ed25519PublicKeyFromOpenssh } from "./synapse/signingKey";
export { renderCreateDatabaseSql, renderPostgresConf, renderPgHbaBlock, renderBackupScript, renderBackupUnits } from "./postgres";
export { renderRedisConf, renderRedisSecretConf, renderRedisDropIn } from "./redis";
export {
    workerConfig,
    renderWorkerYaml,
    sharedWorkerConfig,
    renderSharedWorkerYaml,
    renderFederationSendersYaml,
    renderWorkerUnit,
    renderWorkerList,
    renderRouteTable,
} from "./workers";
export { renderFirewall, renderFirewallUnit, renderFirewallFragment } from "./firewall";
export { renderAutoUpgrades, renderTimesyncd } from "./host";
export { renderYaml } from "./yaml";
export { driftCheckScript, DRIFT_CHECK_PATH, DRIFT_COMMAND, MANAGED_HEADER } from "./drift";
export { renderNginxConf, NginxSite } from "./nginx";
export { renderDeployHook, renderCertbotDropIn } from "./certbot";
export { renderElementConfig, elementConfig } from "./element";
export { renderZoneFile, renderWellKnownWorker, dnsZoneFile } from "./zonefile";
export {
    renderCoturnConf,
    renderCoturnSecretConf,
    renderCoturnDropIn,
    renderCoturnCertificateHook,
    renderTurnSynapseYaml,
    turnSynapseConfig,
    cidrToRange,
    CoturnPaths,
} from "./coturn";
