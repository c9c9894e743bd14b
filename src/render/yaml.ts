import { stringify } from "yaml";

/**
 * Renders a YAML document deterministically: keys keep the order the
 * renderer built them in, no line folding, no anchors, a header that says
 * where the file comes from.
 */
export function renderYaml(value: unknown, header?: string): string {
    const body = stringify(value, { lineWidth: 0, aliasDuplicateObjects: false, indentSeq: true });
    return (
        (header
            ? header
                  .split("\n")
                  .map((l) => `# ${l}`.trimEnd())
                  .join("\n") + "\n"
            : "") + body
    );
}

/** The header of readable files (see render/drift.ts: it says how edits are found and when they are replaced). */
export { MANAGED_HEADER } from "./drift";
