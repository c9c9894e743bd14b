export { hostProbeCommand, hostBootstrapScript, firewallFragmentSet, firewallFragmentPath } from "./host";
export { postgresInstallScript, postgresDatabaseScript } from "./postgres";
export { redisInstallScript, redisPasswordScript } from "./redis";
export { workerSecretsScript, workerConfigScript, workerSendersStopScript, WorkerSecrets } from "./workers";
export { synapseInstallScript, synapseSecretsScript, synapseConfigScript, synapseAdminScript, SynapseSecrets } from "./synapse";
export { applyFileSet, ensureRunning, handlerStep, healthWait, FileSet, ManagedFile, Handler, ServiceUnit, HealthCheck } from "./apply";
export { sh, raw, shQuote, heredoc, heredocVar, Sh } from "./sh";
export { bashCommand, script } from "./shell";
