import { hashComment, MANAGED_HEADER } from "./drift";

/** The first lines of every unit file (and `#`-commented config) the library writes. */
export const UNIT_HEADER = hashComment(MANAGED_HEADER);
