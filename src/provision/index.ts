export { hostProbeCommand, hostBootstrapScript, HostBootstrapSettings } from "./host";
export { postgresInstallScript, postgresDatabaseScript } from "./postgres";
export { synapseInstallScript, synapseSecretsScript, synapseConfigScript, synapseAdminScript, SynapseSecrets } from "./synapse";
export { bashCommand } from "./shell";
