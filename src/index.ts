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
export { SUPPORTED_OS, FirewallRule, OsInfo, PortClaim, HostOptions, HostSettings, HOST_FILES, resolveHostSettings } from "./model/host";
export {
    DatabaseConnection,
    PostgresOptions,
    PostgresLocalSettings,
    resolvePostgresSettings,
    postgresTuning,
    MIN_POSTGRES_MAJOR,
    POSTGRES_FILES,
} from "./model/postgres";
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
export { RedisOptions, RedisLocalSettings, RedisConnection, resolveRedisSettings, REDIS_FILES } from "./model/redis";
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
export { ReverseProxyOptions, ReverseProxySettings, ElementSite, resolveReverseProxySettings, PROXY_FILES } from "./model/proxy";
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
export { TurnServer, TurnServerArgs } from "../components/TurnServer";
export { TurnRemoval, TurnRemovalArgs } from "../components/TurnRemoval";
export { TurnOptions, TurnSettings, TurnCertificate, DENIED_PEER_RANGES, TURN_DEFAULTS, TURN_FILES, resolveTurnSettings, turnUris } from "./model/turn";

// Former names of the TURN server's exports (the service is "turn" in every layer), kept for one release.
import { TurnServer as TurnServerClass, TurnServerArgs as TurnServerArgsType } from "../components/TurnServer";
import { TurnRemoval as TurnRemovalClass, TurnRemovalArgs as TurnRemovalArgsType } from "../components/TurnRemoval";
import {
    TurnOptions as TurnOptionsType,
    TurnSettings as TurnSettingsType,
    TurnCertificate as TurnCertificateType,
    TURN_DEFAULTS as TURN_DEFAULTS_VALUE,
    resolveTurnSettings as resolveTurn,
} from "./model/turn";
/** @deprecated Renamed `TurnServer` (same component; a deployed stack is kept through an alias). */
export const CoturnServer = TurnServerClass;
/** @deprecated Renamed `TurnServer`. */
export type CoturnServer = TurnServerClass;
/** @deprecated Renamed `TurnServerArgs`. */
export type CoturnServerArgs = TurnServerArgsType;
/** @deprecated Renamed `TurnRemoval` (same component; a deployed stack is kept through an alias). */
export const CoturnRemoval = TurnRemovalClass;
/** @deprecated Renamed `TurnRemoval`. */
export type CoturnRemoval = TurnRemovalClass;
/** @deprecated Renamed `TurnRemovalArgs`. */
export type CoturnRemovalArgs = TurnRemovalArgsType;
/** @deprecated Renamed `TurnOptions`. */
export type CoturnOptions = TurnOptionsType;
/** @deprecated Renamed `TurnSettings`. */
export type CoturnSettings = TurnSettingsType;
/** @deprecated Renamed `TurnCertificate`. */
export type CoturnCertificate = TurnCertificateType;
/** @deprecated Renamed `TURN_DEFAULTS`. */
export const COTURN_DEFAULTS = TURN_DEFAULTS_VALUE;
/** @deprecated Renamed `resolveTurnSettings`. */
export const resolveCoturnSettings = resolveTurn;
