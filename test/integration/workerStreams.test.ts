// The stream writers the WorkerPool renders, read by the Synapse release the
// library pins (from PyPI, scripts/synapse-venv.sh): each worker's config
// (homeserver settings + the shared worker config + its own file) goes
// through Synapse's own config parser, and the test reads back who writes
// which stream and what instance_map holds. Media workers must write
// quarantined_media_changes (Synapse >= 1.152), and every stream writer
// must be in instance_map, or Synapse fails at runtime, not at parse time.

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

import { resolveSynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings, WORKER_ROLE_SPECS, WorkerPeers } from "../../src/model/workers";
import { renderSharedWorkerYaml, renderWorkerYaml } from "../../src/render/workers";
import { makeTempDir, run } from "../support/integration/processes";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const PEERS: WorkerPeers = { privateAddresses: {}, redis: { host: "127.0.0.1", port: 6379, tls: false }, redisPassword: false };

/** Parses base + shared + worker YAML with Synapse's HomeServerConfig; prints what it understood as JSON. */
const PARSE = `
import json, os, sys, tempfile, yaml
import signedjson.key
from synapse.config.homeserver import HomeServerConfig
shared, worker = (yaml.safe_load(open(p)) for p in sys.argv[1:3])
d = tempfile.mkdtemp()
key = os.path.join(d, "signing.key")
with open(key, "w") as f:
    signedjson.key.write_signing_keys(f, [signedjson.key.generate_signing_key("a_test")])
secret = os.path.join(d, "secret")
open(secret, "w").write("not-a-real-secret\\n")
conf = {"server_name": "example.com", "signing_key_path": key, "report_stats": False,
        "database": {"name": "psycopg2", "args": {"database": "synapse"}},
        "media_store_path": os.path.join(d, "media"), "worker_log_config": None,
        **shared, "worker_replication_secret_path": secret, **worker}
c = HomeServerConfig()
c.parse_config_dict(conf, config_dir_path=d, data_dir_path=d)
w = c.worker.writers
print(json.dumps({
    "name": c.worker.worker_name,
    "writers": {s: getattr(w, s) for s in ("events", "typing", "quarantined_media_changes", "thread_subscriptions")},
    "instance_map": sorted(c.worker.instance_map),
    "replication_ports": [l.port for l in c.worker.worker_listeners if l.http_options and any("replication" in r.names for r in l.http_options.resources)],
}))
`;

describe("stream writers as the pinned Synapse reads them", function () {
    let venv: string;
    before(async function () {
        venv = await ensureSynapseVenv();
    });

    it("every media worker writes quarantined_media_changes and is in instance_map with a replication listener; thread_subscriptions stays on the main process", async function () {
        const synapse = resolveSynapseSettings("SynapseHomeserver", { serverName: "example.com", replication: {} });
        const pool = resolveWorkerPoolSettings("WorkerPool", { instances: { media_repository: 2, event_persister: 1, typing: 1 } }, synapse, 'Host "vm"');
        const dir = makeTempDir("worker-streams");
        const shared = path.join(dir, "40-workers.yaml");
        fs.writeFileSync(shared, renderSharedWorkerYaml(pool, synapse, PEERS));
        const script = path.join(dir, "parse.py");
        fs.writeFileSync(script, PARSE);
        const writers = pool.workers.filter((w) => w.replicationPort !== undefined).map((w) => w.name);
        for (const w of pool.workers) {
            const file = path.join(dir, `${w.name}.yaml`);
            fs.writeFileSync(file, renderWorkerYaml(pool, w, synapse, PEERS));
            const r = await run(path.join(venv, "bin", "python"), [script, shared, file], { timeoutMs: 120_000 });
            const got = JSON.parse(r.stdout.trim().split("\n").pop()!);
            assert.equal(got.name, w.name);
            assert.deepEqual(got.writers.quarantined_media_changes, ["media_repository1", "media_repository2"]);
            assert.deepEqual(got.writers.events, ["event_persister1"]);
            assert.deepEqual(got.writers.typing, ["typing1"]);
            assert.deepEqual(got.writers.thread_subscriptions, ["master"]);
            assert.deepEqual(got.instance_map, ["master", ...writers].sort());
            assert.deepEqual(got.replication_ports, WORKER_ROLE_SPECS[w.role].streams?.length ? [w.replicationPort] : [], w.name);
        }
    });
});
