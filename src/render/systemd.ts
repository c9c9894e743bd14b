/** The first line of every unit file the library writes. */
export const UNIT_HEADER = "# Managed by pulumi-matrix. Changes made here are overwritten on the next `pulumi up`.";
