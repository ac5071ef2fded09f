export { ShardflowError, type ErrorOptions } from './base.js';
export * from './classes.js';
export { toWireError, fromWireError, isWireError, type WireError } from './wire-form.js';
