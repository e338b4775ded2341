// A module named like the wrapper's, its formatter's or its options' (any
// path part starting with the reserved prefix of contract.json, in any
// case) could take its place: no guest or dependency module may have such
// a name.
import CONTRACT from "./contract.json" with { type: "json" };

export const RESERVED_PREFIX = CONTRACT.reservedModulePrefix;
export const RESERVED_NAME = new RegExp(`(^|/)${RESERVED_PREFIX.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "i");
