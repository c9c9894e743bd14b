/**
 * pulumi-matrix: Pulumi components that deploy a Matrix homeserver onto a VM.
 * Components come from components/; the pure functions behind them (settings,
 * rendering, provisioning scripts) are exported too so other tools can use them.
 */
export { Host, HostArgs, BastionArgs } from "../components/Host";
export { PostgresDatabase, PostgresDatabaseArgs, ExternalPostgresArgs } from "../components/PostgresDatabase";
export { SynapseHomeserver, SynapseHomeserverArgs } from "../components/SynapseHomeserver";
export { RedisServer, RedisServerArgs, ExternalRedisArgs } from "../components/RedisServer";
export { WorkerPool, WorkerPoolArgs, WorkerPoolWorker } from "../components/WorkerPool";
export { MatrixStack, MatrixStackArgs } from "../components/MatrixStack";
export { ElementWeb, ElementWebArgs } from "../components/ElementWeb";
export { ReverseProxy, ReverseProxyArgs } from "../components/ReverseProxy";

export { ConfigError, ConfigErrors } from "./model/errors";
export { SUPPORTED_OS, FirewallRule, OsInfo, PortClaim, HostOptions, HostSettings, resolveHostSettings } from "./model/host";
export { DatabaseConnection, PostgresOptions, PostgresLocalSettings, resolvePostgresSettings, postgresTuning, MIN_POSTGRES_MAJOR } from "./model/postgres";
export {
    SynapseOptions,
    SynapseSettings,
    SynapsePeers,
    SynapseSecretFile,
    SynapsePaths,
    resolveSynapseSettings,
    DEFAULT_SYNAPSE_VERSION,
    DEFAULT_SYNAPSE_PATHS,
    synapseFiles,
    RegistrationMode,
    InstallMethod,
} from "./model/synapse";
export { AptRepository, InstallOptions, DEFAULT_INSTALL_METHOD, MATRIX_ORG_REPOSITORY } from "./model/synapse/install";
export { RedisOptions, RedisLocalSettings, RedisConnection, resolveRedisSettings } from "./model/redis";
export {
    WORKER_ROLES,
    WORKER_ROLE_SPECS,
    WorkerRole,
    WorkerSpec,
    WorkerCounts,
    WorkerPoolOptions,
    WorkerPoolSettings,
    WorkerSettings,
    WorkerUpstream,
    resolveWorkerPoolSettings,
} from "./model/workers";
export {
    ElementWebOptions,
    ElementWebSettings,
    ElementPaths,
    ElementFiles,
    elementFiles,
    resolveElementWebSettings,
    DEFAULT_ELEMENT_PATHS,
    DEFAULT_ELEMENT_DOWNLOAD_URL,
} from "./model/element";
export { ACME_CHALLENGES, AcmeChallenge, AcmeOptions, AcmeSettings, LETS_ENCRYPT, LETS_ENCRYPT_STAGING } from "./model/proxy/acme";
export { ReverseProxyOptions, ReverseProxySettings, ElementSite, resolveReverseProxySettings } from "./model/proxy";
export { ProxyLocation, ProxyUpstream, proxyLocations, proxyUpstreams, proxyTarget } from "./model/proxy/routes";
export { WORKER_ROUTES, WorkerRoute, RouteTarget, Stickiness, routeRequest } from "./model/workers/routes";
export { driftCheckScript, DRIFT_CHECK_PATH } from "./render/drift";
export * as render from "./render";
export * as provision from "./provision";
export { CloudflareDns, CloudflareDnsArgs, CreatedDnsRecord } from "../components/CloudflareDns";
export {
    DELEGATION_MODES,
    DelegationMode,
    WELL_KNOWN_VIA,
    WellKnownVia,
    DnsZone,
    DnsOptions,
    DnsSettings,
    DnsRecord,
    AddressRecord,
    SrvRecord,
    WellKnownWorker,
    ZoneFileOptions,
    ZoneFileSettings,
    DNS_DEFAULTS,
    resolveDnsSettings,
    resolveZoneFileSettings,
    dnsRecords,
    certificateNamesFor,
    serverNameWellKnownFor,
    wellKnownWorker,
} from "./model/dns";
export { dnsZoneFile } from "./render/dns";
export { CoturnServer, CoturnServerArgs } from "../components/CoturnServer";
export { CoturnRemoval, CoturnRemovalArgs } from "../components/CoturnRemoval";
export { CoturnOptions, CoturnSettings, CoturnCertificate, DENIED_PEER_RANGES, COTURN_DEFAULTS, resolveCoturnSettings, turnUris } from "./model/turn";
