// Every provision module's exports, one line per module: a new function needs no edit here.
export * from "./apply";
export * from "./element";
export * from "./host";
export * from "./postgres";
export * from "./proxy";
export * from "./redis";
export * from "./rtc";
export * from "./sh";
export * from "./shell";
export * from "./synapse";
export * from "./synapse/install";
export * from "./synapse/records";
export * from "./target";
export * from "./turn";
export * from "./workers";
