// Every provision module's exports, one line per module: a new function needs no edit here.
export * from "./apply";
export * from "./coturn";
export * from "./element";
export * from "./host";
export * from "./postgres";
export * from "./proxy";
export * from "./redis";
export * from "./sh";
export * from "./shell";
export * from "./synapse";
export * from "./synapseInstall";
export * from "./synapseRecords";
export * from "./target";
export * from "./workers";
