import * as pulumi from "@pulumi/pulumi";

import { backupRemovalScript } from "../src/provision/backup";
import { childName, typeToken } from "./naming";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";

export interface SynapseBackupRemovalArgs {
    /** The homeserver whose host ran the backup. */
    synapse: SynapseHomeserver;
}

/**
 * Takes away the backup timers, commands and credentials a `SynapseBackup`
 * set up before (MatrixStack puts it in place whenever `backup` is left
 * out). The off-host repository, an on-host archive and the restore marker
 * stay. On a host that never had backups it changes nothing.
 */
export class SynapseBackupRemoval extends pulumi.ComponentResource {
    /** Done once the backup is gone from the host. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: SynapseBackupRemovalArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("SynapseBackupRemoval"), name, {}, opts);
        this.ready = hostScript(childName(name, "removal"), { host: args.synapse.host, script: backupRemovalScript() }, { parent: this });
        this.registerOutputs({});
    }
}
