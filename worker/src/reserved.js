// A module named like the wrapper's, its formatter's or its options'
// (any path part starting with __dw_, in any case) could take its place:
// no guest or dependency module may have such a name.
export const RESERVED_NAME = /(^|\/)__dw_/i;
