import { MANAGED_HEADER, hashComment } from "./drift";

/** The first lines of every unit file (and `#`-commented config) the library writes. */
export const UNIT_HEADER = hashComment(MANAGED_HEADER);
