import assert from "node:assert/strict";

import { resolveSynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings } from "../../src/model/workers";
import { synapsePeerSecrets, synapsePeerSecretsRemoval } from "../../src/provision/synapse";
import { turnSynapseRemovalScript, turnSynapseSecretScript } from "../../src/provision/turn";
import { workerSecretsScript } from "../../src/provision/workers";

describe("secrets between services: one step per peer, through one function", () => {
    const synapse = resolveSynapseSettings("s", { serverName: "example.com", replication: {} });

    it("writes a peer's files under Synapse's secrets/ as a secret set of its own, after checking Synapse is installed", () => {
        const text = synapsePeerSecrets(synapse, "peer-secrets", [{ name: "peer_secret", kind: "secret", content: "SECRETvalue\n" }], []).text;
        assert.match(text, /^id -u matrix-synapse /m);
        assert.match(text, /^install -d -m 0750 -o root -g matrix-synapse \/etc\/matrix-synapse\/secrets$/m);
        assert.match(text, /^pm_write peer-secrets \/etc\/matrix-synapse\/secrets\/peer_secret 0640 root matrix-synapse secret /m);
        assert.match(text, /^pm_prune peer-secrets$/m);
        // The removal prunes the same set and writes nothing.
        const removal = synapsePeerSecretsRemoval("peer-secrets").text;
        assert.match(removal, /^pm_prune peer-secrets$/m);
        assert.doesNotMatch(removal, /pm_write/);
    });

    it("coturn and the worker pool write theirs with it, under their own set names", () => {
        const pool = resolveWorkerPoolSettings("w", {}, synapse, 'Host "vm"');
        const written = (script: string) => [...script.matchAll(/^pm_write (\S+) (\S+) (\S+) /gm)].map((m) => m.slice(1).join(" "));
        assert.deepEqual(written(turnSynapseSecretScript(synapse, "SECRETturn")), ["turn-synapse-secret /etc/matrix-synapse/secrets/turn_shared_secret 0640"]);
        assert.deepEqual(written(workerSecretsScript(pool, synapse, 'Host "vm"', { replicationSecret: "SECRETrep", redisPassword: "SECRETpw" })), [
            "workers-secrets /etc/matrix-synapse/secrets/worker_replication_secret 0640",
            "workers-secrets /etc/matrix-synapse/secrets/redis_password 0640",
        ]);
        assert.ok(turnSynapseRemovalScript(synapse).includes(synapsePeerSecretsRemoval("turn-synapse-secret").text));
    });
});
