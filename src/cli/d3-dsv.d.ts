// The part of d3-dsv (which ships no types) that `ballast drift`'s reader uses.
declare module "d3-dsv" {
  export interface DSV {
    /** Calls `row` for each record's fields; records it returns null for are not kept. */
    parseRows<T>(text: string, row: (fields: string[], index: number) => T | null | undefined): T[];
  }
  export function dsvFormat(delimiter: string): DSV;
}
