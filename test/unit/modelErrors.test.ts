import * as assert from "node:assert/strict";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { resolveElementWebSettings } from "../../src/model/element";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { WorkerPoolOptions, resolveWorkerPoolSettings } from "../../src/model/workers";

/** The errors a call throws, flattened (a ConfigErrors holds several). */
function errorsOf(fn: () => unknown): ConfigError[] {
    try {
        fn();
    } catch (e) {
        if (e instanceof ConfigErrors) return e.errors;
        if (e instanceof ConfigError) return [e];
        throw e;
    }
    return [];
}

/** Every versioned option: how it is set, what the projects really tag, and forms no release has. */
const VERSIONED: { name: string; set: (v: unknown) => unknown; valid: string[]; invalid: unknown[] }[] = [
    {
        name: "SynapseHomeserver version",
        set: (version) => resolveSynapseSettings("SynapseHomeserver", { serverName: "example.com", version: version as string }),
        valid: ["1.163.2", "1.164.0rc1", "1.0.0", "2.0.0rc12"],
        invalid: ["latest", "1.163", "v1.163.2", "1.163.2-rc1", "1.163.2rc", "01.163.2", "1.163.2 ", "1.163.2.1", "", 1.163, "1.164.0rc0"],
    },
    {
        name: "ElementWeb version",
        set: (version) =>
            resolveElementWebSettings(
                "ElementWeb",
                { domain: "element.example.com", version: version as string, sha256: "0".repeat(64) },
                { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
            ),
        valid: ["1.11.100", "1.12.8", "1.11.101-rc.0", "2.0.0"],
        invalid: ["latest", "1.11", "v1.11.100", "1.11.100rc1", "1.11.100-rc1", "01.11.100", "1.11.100.1", "", 1.11],
    },
];

describe("versions: a form no release can have is refused, saying what a valid one looks like", () => {
    for (const v of VERSIONED)
        it(v.name, () => {
            for (const good of v.valid) assert.doesNotThrow(() => v.set(good), `${v.name} ${good}`);
            for (const bad of v.invalid) {
                const errs = errorsOf(() => v.set(bad)).filter((e) => e.setting === "version");
                assert.equal(errs.length, 1, `${v.name} ${JSON.stringify(bad)} is refused`);
                assert.match(errs[0].message, /version is .*; expected .* release such as \d+\.\d+\.\d+ .*MAJOR\.MINOR\.PATCH/);
            }
        });
});

describe("Synapse's extraConfig that stops outbound federation or names processes that do not exist", () => {
    const synapseWith = (extraConfig: Record<string, unknown>) =>
        resolveSynapseSettings("SynapseHomeserver", { serverName: "example.com", replication: {}, extraConfig });
    const DUTY_SWITCHES = ["send_federation", "start_pushers", "notify_appservices", "update_user_directory"];
    const INSTANCE_OPTIONS: Record<string, (name: string) => unknown> = {
        federation_sender_instances: (n) => [n],
        pusher_instances: (n) => [n],
        run_background_tasks_on: (n) => n,
        update_user_directory_from_worker: (n) => n,
        notify_appservices_from_worker: (n) => n,
        media_instance_running_background_jobs: (n) => n,
        stream_writers: (n) => ({ events: [n] }),
        instance_map: (n) => ({ [n]: { host: "127.0.0.1", port: 9999 } }),
    };

    it("refuses each legacy switch set to false (the duty would stop), naming the setting and what to do", () => {
        for (const key of DUTY_SWITCHES) {
            const errs = errorsOf(() => synapseWith({ [key]: false }));
            assert.equal(errs.length, 1, key);
            assert.equal(errs[0].setting, `extraConfig.${key}`);
            assert.match(errs[0].message, new RegExp(`extraConfig\\.${key} is false; it would stop .* leave ${key} out`));
            assert.doesNotThrow(() => synapseWith({ [key]: true }), key);
        }
    });

    it("refuses each option that names processes when it names one that does not exist; the main process is fine", () => {
        for (const [key, value] of Object.entries(INSTANCE_OPTIONS)) {
            const errs = errorsOf(() => synapseWith({ [key]: value("ghost1") }));
            assert.equal(errs.length, 1, key);
            assert.equal(errs[0].setting, `extraConfig.${key}`);
            assert.match(errs[0].message, /it names ghost1, and no such Synapse process exists: valid is only the main process \("main"\)/, key);
            for (const main of ["main", "master"]) assert.doesNotThrow(() => synapseWith({ [key]: value(main) }), `${key} ${main}`);
        }
        assert.doesNotThrow(() => synapseWith({ federation_sender_instances: [] }));
    });

    it("with a WorkerPool: refuses the options it writes (an empty sender list while it has senders too), and restricting outbound federation to processes outside instance_map", () => {
        const pool = (workers: WorkerPoolOptions["workers"], extraConfig: Record<string, unknown>) => () =>
            resolveWorkerPoolSettings("WorkerPool", { workers }, synapseWith(extraConfig), 'Host "vm"');
        for (const key of ["federation_sender_instances", "send_federation", "stream_writers"]) {
            const errs = errorsOf(pool({ federation_sender: 2 }, { [key]: key === "send_federation" ? true : [] }));
            assert.equal(errs.length, 1, key);
            assert.match(
                errs[0].message,
                new RegExp(`synapse\\.extraConfig is \\["${key}"\\]; ${key} is written by the WorkerPool .*remove it from extraConfig`),
            );
        }
        const restricted = (workers: WorkerPoolOptions["workers"], value: unknown) => errorsOf(pool(workers, { outbound_federation_restricted_to: value }));
        assert.deepEqual(restricted({ federation_sender: 1 }, ["master"]), []);
        assert.deepEqual(restricted({ event_persister: 1 }, ["master", "event_persister1"]), []);
        assert.deepEqual(restricted({ federation_sender: 1 }, []), []);
        for (const [workers, value] of [
            [{ federation_sender: 1 }, ["federation_sender1"]],
            [{ federation_sender: 1 }, ["main"]],
            [{ federation_sender: 1 }, "master"],
            [{}, ["master"]],
        ] as [WorkerPoolOptions["workers"], unknown][]) {
            const errs = restricted(workers, value);
            assert.equal(errs.length, 1, JSON.stringify([workers, value]));
            assert.equal(errs[0].setting, "synapse.extraConfig.outbound_federation_restricted_to");
            assert.match(errs[0].message, /; expected (a list of processes in instance_map: master|it left out)/);
        }
    });
});
