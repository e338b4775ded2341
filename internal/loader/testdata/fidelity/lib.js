// A second module of the probe: frames in another module, a class.
export function thrower(message) {
  throw new RangeError(message);
}

export class Failure extends Error {
  constructor(message) {
    super(message);
    this.name = "Failure";
  }
}

export async function later(fn) {
  await null;
  return fn();
}
