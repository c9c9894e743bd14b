import { Host } from "../../../components/Host";
import { PostgresDatabase } from "../../../components/PostgresDatabase";
import { RedisServer, RedisServerArgs } from "../../../components/RedisServer";
import { SynapseHomeserver } from "../../../components/SynapseHomeserver";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "./fixtures";

/**
 * Synapse on Host "vm" (private address 10.0.0.4) with PostgreSQL and Redis
 * that Host "w2" (10.0.0.6) reaches over the private network: the set-up
 * of the tests with workers on another host. Construct it inside
 * `runWithMocks`; `redis` adds to Redis's arguments.
 */
export function twoHostHomeserver(redis: Partial<RedisServerArgs> = {}) {
    const vm = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, privateAddress: "10.0.0.4" });
    const w2 = new Host("w2", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, privateAddress: "10.0.0.6" });
    const reachable = { bindAddresses: ["127.0.0.1", "10.0.0.4"], allowedClients: ["10.0.0.6/32"], reachableAt: "10.0.0.4" };
    const database = new PostgresDatabase("pg", {
        host: vm,
        listenAddresses: reachable.bindAddresses,
        allowedClients: reachable.allowedClients,
        reachableAt: reachable.reachableAt,
    });
    const synapse = new SynapseHomeserver("synapse", {
        host: vm,
        database,
        serverName: "example.com",
        installMethod: "pip",
        replication: { bindAddresses: ["127.0.0.1", "10.0.0.4"] },
    });
    return { vm, w2, database, synapse, redis: new RedisServer("r", { host: vm, ...reachable, ...redis }) };
}
