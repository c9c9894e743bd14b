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

export const MANAGED_HEADER = "Managed by pulumi-matrix. Changes made here are overwritten on the next `pulumi up`.";
