import { PortClaim } from "./host";
import { SynapseOptions } from "./options";

/** The ports Synapse's main process binds on its host, for clash detection. */
export function synapsePortClaims(o: SynapseOptions): PortClaim[] {
    const claims: PortClaim[] = [];
    for (const address of o.httpBindAddresses ?? ["127.0.0.1"]) claims.push({ port: o.httpPort ?? 8008, protocol: "tcp", address, owner: "synapse http listener" });
    if (o.metrics?.enabled ?? true) claims.push({ port: o.metrics?.port ?? 9000, protocol: "tcp", address: o.metrics?.bindAddress ?? "127.0.0.1", owner: "synapse metrics listener" });
    return claims;
}
