/**
 * pulumi-matrix: Pulumi components that deploy a Matrix homeserver onto a VM.
 * Components come from components/; the pure functions behind them (settings,
 * rendering, provisioning scripts) are exported too so other tools can use them.
 */
export { CloudflareDns, CloudflareDnsArgs, CreatedDnsRecord } from "../components/CloudflareDns";
export { ElementWeb, ElementWebArgs } from "../components/ElementWeb";
export { BastionArgs, Host, HostArgs } from "../components/Host";
export { MatrixStack, MatrixStackArgs } from "../components/MatrixStack";
export { MonitoringRemoval, MonitoringRemovalArgs } from "../components/MonitoringRemoval";
export { MonitoringServer, MonitoringServerArgs } from "../components/MonitoringServer";
export { ExternalPostgresArgs, PostgresDatabase, PostgresDatabaseArgs } from "../components/PostgresDatabase";
export { ExternalRedisArgs, RedisServer, RedisServerArgs } from "../components/RedisServer";
export { ReverseProxy, ReverseProxyArgs } from "../components/ReverseProxy";
export { RtcRemoval, RtcRemovalArgs } from "../components/RtcRemoval";
export { RtcServer, RtcServerArgs } from "../components/RtcServer";
export { SynapseAdoption, SynapseAdoptionArgs } from "../components/SynapseAdoption";
export { SynapseBackup, SynapseBackupArgs } from "../components/SynapseBackup";
export { SynapseBackupRemoval, SynapseBackupRemovalArgs } from "../components/SynapseBackupRemoval";
export { SynapseHomeserver, SynapseHomeserverArgs } from "../components/SynapseHomeserver";
export { SynapseMaintenance, SynapseMaintenanceArgs } from "../components/SynapseMaintenance";
export { TurnRemoval, TurnRemovalArgs } from "../components/TurnRemoval";
export { TurnServer, TurnServerArgs } from "../components/TurnServer";
export { WorkerPool, WorkerPoolArgs, WorkerPoolWorker } from "../components/WorkerPool";
export { ADOPT_FILES, AdoptOptions, AdoptPostgresMode, AdoptSettings, resolveAdoptSettings, SYNAPSE_SCHEMA_VERSIONS } from "./model/adopt";
export {
    BACKUP_DEFAULTS,
    BACKUP_FILES,
    BACKUP_METRIC,
    BackupOptions,
    BackupSettings,
    BackupTarget,
    parseRepository,
    resolveBackupSettings,
} from "./model/backup";
export {
    AddressRecord,
    certificateNamesFor,
    DELEGATION_MODES,
    DelegationMode,
    DNS_DEFAULTS,
    DnsOptions,
    DnsRecord,
    dnsRecords,
    DnsSettings,
    DnsZone,
    resolveDnsSettings,
    resolveZoneFileSettings,
    serverNameWellKnownFor,
    SrvRecord,
    WELL_KNOWN_VIA,
    WellKnownVia,
    WellKnownWorker,
    wellKnownWorker,
    ZoneFileOptions,
    ZoneFileSettings,
} from "./model/dns";
export {
    DEFAULT_ELEMENT_DOWNLOAD_URL,
    DEFAULT_ELEMENT_PATHS,
    ElementFiles,
    elementFiles,
    ElementPaths,
    ElementWebOptions,
    ElementWebSettings,
    resolveElementWebSettings,
} from "./model/element";
export { ConfigError, ConfigErrors } from "./model/errors";
export { FirewallRule, HOST_FILES, HostOptions, HostSettings, OsInfo, PortClaim, resolveHostSettings, SUPPORTED_OS } from "./model/host";
export {
    CompressorOptions,
    EmptyRoomsOptions,
    MAINTENANCE_DEFAULTS,
    MAINTENANCE_FILES,
    MAINTENANCE_UNITS,
    MaintenanceOptions,
    MaintenanceSettings,
    MediaCacheOptions,
    resolveMaintenanceSettings,
} from "./model/maintenance";
export {
    ALERT_THRESHOLDS,
    MONITORING_DEFAULTS,
    MONITORING_FILES,
    MonitoringOptions,
    MonitoringSettings,
    resolveMonitoringSettings,
    SYNAPSE_RULES,
} from "./model/monitoring";
export { FAILED_UNIT_REGEX, NODE_EXPORTER_PORT, NODE_EXPORTER_TEXTFILE_DIR, NODE_EXPORTER_UNIT } from "./model/nodeExporter";
export {
    DatabaseConnection,
    MIN_POSTGRES_MAJOR,
    POSTGRES_FILES,
    PostgresLocalSettings,
    PostgresOptions,
    postgresTuning,
    resolvePostgresSettings,
} from "./model/postgres";
export { ElementSite, PROXY_FILES, resolveReverseProxySettings, ReverseProxyOptions, ReverseProxySettings } from "./model/proxy";
export { ACME_CHALLENGES, AcmeChallenge, AcmeOptions, AcmeSettings, LETS_ENCRYPT, LETS_ENCRYPT_STAGING } from "./model/proxy/acme";
export { ProxyLocation, proxyLocations, proxyTarget, ProxyUpstream, proxyUpstreams } from "./model/proxy/routes";
export { REDIS_FILES, RedisConnection, RedisLocalSettings, RedisOptions, resolveRedisSettings } from "./model/redis";
export { resolveRtcSettings, RTC_DEFAULTS, RTC_FILES, RtcOptions, RtcRelease, RtcSettings, RtcSite, rtcSite } from "./model/rtc";
export { planStack, StackDnsOptions, StackPlan, StackPlanArgs } from "./model/stack";
export {
    DEFAULT_SYNAPSE_PATHS,
    DEFAULT_SYNAPSE_VERSION,
    InstallMethod,
    RegistrationMode,
    resolveSynapseSettings,
    synapseFiles,
    SynapseOptions,
    SynapsePaths,
    SynapsePeers,
    SynapseSecretFile,
    SynapseSettings,
} from "./model/synapse";
export { AptRepository, DEFAULT_INSTALL_METHOD, InstallOptions, MATRIX_ORG_REPOSITORY } from "./model/synapse/install";
export { DENIED_PEER_RANGES, resolveTurnSettings, TURN_DEFAULTS, TURN_FILES, TurnCertificate, TurnOptions, TurnSettings, turnUris } from "./model/turn";
export {
    resolveWorkerPoolSettings,
    WORKER_ROLE_SPECS,
    WORKER_ROLES,
    WorkerCounts,
    WorkerPoolOptions,
    WorkerPoolSettings,
    WorkerRole,
    WorkerSettings,
    WorkerSpec,
    WorkerUpstream,
} from "./model/workers";
export { routeRequest, RouteTarget, Stickiness, WORKER_ROUTES, WorkerRoute } from "./model/workers/routes";
export * as provision from "./provision";
export * as render from "./render";
export { dnsZoneFile } from "./render/dns";
export { DRIFT_CHECK_PATH, driftCheckScript } from "./render/drift";

// Former names of the TURN server's exports (the service is "turn" in every layer), kept for one release.
import { TurnRemoval as TurnRemovalClass, TurnRemovalArgs as TurnRemovalArgsType } from "../components/TurnRemoval";
import { TurnServer as TurnServerClass, TurnServerArgs as TurnServerArgsType } from "../components/TurnServer";
import {
    resolveTurnSettings as resolveTurn,
    TURN_DEFAULTS as TURN_DEFAULTS_VALUE,
    TurnCertificate as TurnCertificateType,
    TurnOptions as TurnOptionsType,
    TurnSettings as TurnSettingsType,
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
