// Every render module's exports, one line per module: a new function needs no edit here.
export * from "./dns";
export * from "./drift";
export * from "./element";
export * from "./firewall";
export * from "./host";
export * from "./postgres";
export * from "./prometheus";
export * from "./proxy";
export * from "./redis";
export * from "./rtc";
export * from "./synapse/homeserver";
export * from "./synapse/signingKey";
export * from "./synapse/units";
export * from "./systemd";
export * from "./turn";
export * from "./workers";
export * from "./yaml";
