/**
 * `npm run config:update`: writes the files generated from the key table
 * (src/config/keys.ts): Pulumi.yaml's `config:` block, the README's key
 * table and Pulumi.example.yaml; appends new keys to the published list.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { GENERATED_FILES } from "../src/config/generate";

const ROOT = path.join(__dirname, "..");
for (const [file, update] of Object.entries(GENERATED_FILES)) {
    const at = path.join(ROOT, file);
    const before = fs.existsSync(at) ? fs.readFileSync(at, "utf8") : "";
    const after = update(before);
    if (after === before) continue;
    fs.writeFileSync(at, after);
    console.log(`wrote ${file}`);
}
